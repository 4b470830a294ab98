"""Synthetic sequence tasks: random token sequences generated in-process, labeled by a property.

Each task returns a ``Dataset`` whose features are integer tokens (N, length) — the input of an
embedding, not standardized — and whose labels are class indices. The same ``seed`` gives the
same sequences, so the test set is fixed for a seed whatever seed training uses.

- ``majority``: the token occurring most often (ties go to the smallest token); ``vocab_size``
  classes. Needs the whole sequence: counts, then a comparison between them.
- ``first_last``: 1 if the first and the last token are equal, else 0; half of each split is
  built equal and half unequal, so chance is 50%. Needs positions and attention between two far tokens.
"""
from __future__ import annotations

import numpy as np

from .datasets import Dataset, DatasetError


def _majority(tokens, vocab_size, rng):
    counts = np.stack([(tokens == v).sum(axis=1) for v in range(vocab_size)], axis=1)
    return counts.argmax(axis=1)


def _first_last(tokens, vocab_size, rng):
    equal = rng.permutation(len(tokens)) % 2 == 0
    tokens[equal, -1] = tokens[equal, 0]
    # The other half is made unequal, so the classes are exactly balanced.
    shift = rng.integers(1, vocab_size, size=int((~equal).sum()))
    tokens[~equal, -1] = (tokens[~equal, 0] + shift) % vocab_size
    return (tokens[:, 0] == tokens[:, -1]).astype(np.int64)


SEQUENCE_TASKS = {"majority": _majority, "first_last": _first_last}


def _classes(task, vocab_size):
    return vocab_size if task == "majority" else 2


def sequence_task(task="majority", n_train=4000, n_test=1000, length=16, vocab_size=8, seed=0):
    """A synthetic sequence-classification ``Dataset`` (see the module docstring for the tasks).

    >>> data = sequence_task("first_last", n_train=10, n_test=4, length=5)
    >>> data.x_train.shape, data.n_classes, data.kind
    ((10, 5), 2, 'sequence')
    """
    if task not in SEQUENCE_TASKS:
        raise DatasetError(f"unknown sequence task {task!r}; choose one of {', '.join(sorted(SEQUENCE_TASKS))}")
    if min(n_train, n_test) < 1 or length < 2 or vocab_size < 2:
        raise DatasetError(f"sequence task {task!r} needs n_train, n_test >= 1, length >= 2 and vocab_size >= 2, "
                           f"got {n_train}, {n_test}, {length}, {vocab_size}")
    rng = np.random.default_rng(seed)
    splits = []
    for n in (n_train, n_test):
        tokens = rng.integers(0, vocab_size, size=(n, length))
        labels = SEQUENCE_TASKS[task](tokens, vocab_size, rng).astype(np.int64)
        splits.append((tokens.astype(np.int64), labels))
    (x_train, y_train), (x_test, y_test) = splits
    return Dataset(f"{task} (synthetic, length {length}, vocab {vocab_size})", x_train, y_train, x_test, y_test,
                   n_classes=_classes(task, vocab_size), kind="sequence",
                   info={"task": task, "length": length, "vocab_size": vocab_size, "seed": seed})
