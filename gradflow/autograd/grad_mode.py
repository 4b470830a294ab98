"""Whether ops record the graph: ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

Each works as a context manager and as a decorator, like PyTorch's. The flag is per thread.
"""
from __future__ import annotations

import functools
import threading

class _State(threading.local):
    enabled = True  # the class attribute is every new thread's default


_state = _State()


def is_grad_enabled() -> bool:
    return _state.enabled


def _set(enabled: bool) -> None:
    _state.enabled = enabled


class _GradMode:
    enabled: bool

    def __enter__(self):
        self._previous = is_grad_enabled()
        _set(self.enabled)
        return self

    def __exit__(self, *exc):
        _set(self._previous)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__(*self._args()):
                return fn(*args, **kwargs)
        return wrapper

    def _args(self):
        return ()


class no_grad(_GradMode):
    """Run without recording: results have no grad_fn and nothing is saved for backward."""
    enabled = False


class enable_grad(_GradMode):
    """Record again inside a ``no_grad`` region."""
    enabled = True


class set_grad_enabled(_GradMode):
    """Turn recording on or off: ``with set_grad_enabled(is_training): ...``."""

    def __init__(self, mode: bool):
        self.enabled = bool(mode)
        self._previous = is_grad_enabled()
        _set(self.enabled)  # like PyTorch, it also works as a plain function call

    def __enter__(self):
        return self

    def __call__(self, fn):
        _set(self._previous)  # used as a decorator: the mode applies inside fn only
        return super().__call__(fn)

    def _args(self):
        return (self.enabled,)
