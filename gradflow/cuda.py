"""``gradflow.cuda``: whether CUDA can be used here, and why not."""
from .backends.cuda_probe import is_available, why_cuda_unusable

__all__ = ["is_available", "why_cuda_unusable"]
