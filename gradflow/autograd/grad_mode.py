"""Whether ops record the graph: ``no_grad``, ``enable_grad``, ``set_grad_enabled``; and the
per-thread state every forward and backward pass switches on and off.

Each mode works as a context manager and as a decorator, like PyTorch's. The flag is per thread.

# Note: [state belongs to a call]
Everything a pass turns on for its own duration lives in ``_state``, one ``threading.local``:
grad mode, and what a backward sets for the rules it runs (raw arrays, graph freeing, the
gradient a rule may overwrite; see the notes in node.py). A thread sees only its own values, so
backward passes in several threads at once do not see each other's switches; a nested pass
(checkpoint's rerun, a hook calling grad()) saves the values it changes and restores them.
"""
from __future__ import annotations

import functools
import threading


class _State(threading.local):
    # The class attributes are every new thread's defaults.
    enabled = True    # grad mode: ops record the graph
    raw = False       # a first-order backward runs rules on raw arrays (node.py [rules on raw arrays])
    freeing = False   # that backward frees the graph as it goes (Node.release_saved)
    free_grad = None  # the incoming gradient a rule may write over (node.py [a gradient the rule may overwrite])
    saved_hooks = ()  # (pack, unpack) pairs of this thread's saved_tensors_hooks, innermost last
    packing_node = None      # what a pack hook is packing right now: the saving node, and
    packing_output = False   # whether the value is that node's own output (graph.py)


_state = _State()


def is_grad_enabled() -> bool:
    return _state.enabled


def _set(enabled: bool) -> None:
    _state.enabled = enabled


class _GradMode:
    enabled: bool

    def __enter__(self):
        state = _state  # is_grad_enabled() and _set() written out: every optimizer step enters one
        self._previous = state.enabled
        state.enabled = self.enabled
        return self

    def __exit__(self, *exc):
        _state.enabled = self._previous
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
