"""Optimizers and learning-rate schedulers (``gradflow.optim``), PyTorch's names and update rules."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .grad_scaler import GradScaler
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "GradScaler", "lr_scheduler"]
