"""Synthetic sequence tasks: random token sequences generated in-process, labeled by a property
(one class per sequence) or by a target sequence (one class per position).

Each task returns a ``Dataset`` whose features are integer tokens (N, length) — the input of an
embedding, not standardized — and whose labels are class indices: (N,) for a classification task,
(N, length) target tokens for a sequence-to-sequence task (``info["per_token"]`` is True). The same
``seed`` gives the same sequences, so the test set is fixed for a seed whatever seed training uses.

Classification tasks (one label per sequence):

- ``majority``: the token occurring most often (ties go to the smallest token); ``vocab_size``
  classes. Needs the whole sequence: counts, then a comparison between them.
- ``first_last``: 1 if the first and the last token are equal, else 0; half of each split is
  built equal and half unequal, so chance is 50%. Needs positions and attention between two far tokens.

Sequence-to-sequence tasks (one target token per position, same length as the input; a model is
right on a sequence only when every position is right, so chance is ``vocab_size ** -length``):

- ``copy``: the input itself. Each position attends to itself.
- ``reverse``: the input backwards. Position i attends to position length-1-i.
- ``sort``: the input's tokens in ascending order. Position i must count, for each token, how many
  tokens are smaller — a comparison between every pair, not a fixed routing.
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


def _copy(tokens, vocab_size, rng):
    return tokens.copy()


def _reverse(tokens, vocab_size, rng):
    return tokens[:, ::-1].copy()


def _sort(tokens, vocab_size, rng):
    return np.sort(tokens, axis=1)


CLASSIFICATION_TASKS = {"majority": _majority, "first_last": _first_last}
TOKEN_TASKS = {"copy": _copy, "reverse": _reverse, "sort": _sort}
SEQUENCE_TASKS = {**CLASSIFICATION_TASKS, **TOKEN_TASKS}


def _classes(task, vocab_size):
    return 2 if task == "first_last" else vocab_size


def sequence_task(task="majority", n_train=4000, n_test=1000, length=16, vocab_size=8, seed=0):
    """A synthetic sequence-classification ``Dataset`` (see the module docstring for the tasks).

    >>> data = sequence_task("first_last", n_train=10, n_test=4, length=5)
    >>> data.x_train.shape, data.n_classes, data.kind
    ((10, 5), 2, 'sequence')
    >>> data = sequence_task("reverse", n_train=1, n_test=1, length=4, vocab_size=10, seed=1)
    >>> data.x_train[0].tolist(), data.y_train[0].tolist()
    ([4, 5, 7, 9], [9, 7, 5, 4])
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
                   info={"task": task, "length": length, "vocab_size": vocab_size, "seed": seed,
                         "per_token": task in TOKEN_TASKS})
