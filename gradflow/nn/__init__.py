"""Neural-network building blocks (``gradflow.nn``)."""
from . import functional

__all__ = ["functional"]
