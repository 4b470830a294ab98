"""Random generators: ``gradflow.Generator`` (PyTorch-like) and the global one, ``default_generator``.

Every sampling function (``randn``, ``rand``, ``normal``, ``uniform``, ``bernoulli``, ``randint``,
dropout, ``nn.init``, shuffling) draws from ``default_generator`` unless given ``generator=``.
Samples are drawn on the host with NumPy's PCG64 and then moved to the tensor's device, so one
seed gives the same numbers on every device.

>>> g = gf.Generator().manual_seed(3)
>>> a = gf.randn(2, generator=g)
>>> b = gf.randn(2, generator=gf.Generator().manual_seed(3))
>>> bool((a == b).all())
True
"""
from __future__ import annotations

import numpy as np

# PyTorch's seed for a new Generator that was never seeded, so a fresh one is reproducible too.
_DEFAULT_SEED = 67280421310721


class Generator:
    """An independent random stream: ``manual_seed(n)`` restarts it, ``get_state``/``set_state``
    save and restore its position. ``device`` is accepted for PyTorch compatibility; draws always
    happen on the host (see the module docstring)."""

    def __init__(self, device="cpu"):
        self.device = device
        self.manual_seed(_DEFAULT_SEED)

    def manual_seed(self, seed):
        """Restart the stream from ``seed`` (an int); returns the generator, as PyTorch's does."""
        seed = int(seed)
        if seed < 0:
            raise ValueError(f"a seed must be non-negative, got {seed}")
        self._seed = seed
        self.numpy = np.random.default_rng(seed)
        return self

    def seed(self):
        """Seed from the operating system's entropy; returns the new seed."""
        seed = int(np.random.SeedSequence().entropy % 2 ** 63)
        self.manual_seed(seed)
        return seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        """The stream's position (NumPy's bit-generator state, a dict; PyTorch's is a byte tensor)."""
        return self.numpy.bit_generator.state

    def set_state(self, state):
        self.numpy.bit_generator.state = state
        return self

    def __repr__(self):
        return f"<gradflow.Generator seed={self._seed}>"


default_generator = Generator().manual_seed(0)


def manual_seed(seed):
    """Seed the global generator (randn, rand, init, dropout, shuffling); returns it."""
    return default_generator.manual_seed(seed)


def seed():
    return default_generator.seed()


def initial_seed():
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(state):
    default_generator.set_state(state)


def numpy_generator(generator=None):
    """The NumPy generator behind ``generator`` (the global one when None)."""
    if generator is None:
        return default_generator.numpy
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a gradflow.Generator, got {type(generator).__name__}")
    return generator.numpy
