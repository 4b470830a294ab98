"""The transformer family: a small encoder over token sequences, and its tasks.

``build("transformer", dataset=sequence_task("majority"))`` sizes the model from the dataset
(vocabulary, classes, sequence length); ``gradflow train --model transformer --task majority``
does the same from the shell. A classification task (one label per sequence) gets a
``TransformerClassifier``; a sequence-to-sequence task (``reverse``, ``sort``, ``copy``: one target
token per position) gets a ``TransformerTagger``, which predicts every position at once. The family's data are the synthetic sequence tasks of
``gradflow.data.synthetic`` (``load_data``), fed to the model as integer tokens.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..data.synthetic import SEQUENCE_TASKS, sequence_task
from ..nn import Embedding, LayerNorm, Linear, Module, Sequential, TransformerEncoderLayer
from . import register


class TransformerClassifier(Module):
    """Token and learned position embeddings, ``num_layers`` pre-norm encoder layers, a final
    LayerNorm, the mean over positions, and a linear head: (N, L) tokens -> (N, classes) logits.

    >>> import gradflow as gf
    >>> model = TransformerClassifier(vocab_size=8, n_classes=3, max_len=6, d_model=16, nhead=2)
    >>> model(gf.tensor([[1, 2, 3, 0, 0, 7]])).shape
    (1, 3)
    """

    def __init__(self, vocab_size, n_classes, max_len, d_model=32, nhead=4, num_layers=2, dim_feedforward=64,
                 dropout=0.0, norm_first=True, dtype=None, device=None):
        super().__init__()
        options = dict(dtype=dtype, device=device)
        self.max_len = int(max_len)
        self.embed = Embedding(vocab_size, d_model, **options)
        self.position = Embedding(max_len, d_model, **options)
        self.layers = Sequential(*[TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout,
                                                           norm_first=norm_first, **options)
                                   for _ in range(num_layers)])
        self.norm = LayerNorm(d_model, **options)
        self.head = Linear(d_model, n_classes, **options)

    def encode(self, tokens):
        """(N, L) tokens -> (N, L, d_model) features after the encoder layers and the final LayerNorm."""
        length = tokens.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequences of length {length} are longer than this model's max_len {self.max_len}")
        x = self.embed(tokens) + self.position(np.arange(length))
        return self.norm(self.layers(x))

    def forward(self, tokens):
        return self.head(ops.mean(self.encode(tokens), axis=1))


class TransformerTagger(TransformerClassifier):
    """The same encoder with the head applied at every position: (N, L) tokens -> (N, classes, L)
    logits, the layout ``cross_entropy`` takes for per-position targets (N, L), so
    ``logits.argmax(axis=1)`` is the predicted sequence.

    The encoder is bidirectional (no causal mask): every output position sees the whole input,
    which is what ``reverse`` and ``sort`` need.

    >>> import gradflow as gf
    >>> model = TransformerTagger(vocab_size=10, n_classes=10, max_len=6, d_model=16, nhead=2)
    >>> model(gf.tensor([[1, 2, 3, 0, 0, 7]])).shape
    (1, 10, 6)
    """

    def forward(self, tokens):
        return self.head(self.encode(tokens)).swapaxes(1, 2)


# Sizes of the sequence-to-sequence models: sort must compare every pair of tokens, which
# a 2-layer encoder learns for length-10 sequences with this width (tuned so the CLI's default
# run reaches 99% whole-sequence accuracy; see the README).
TAGGER_OPTIONS = dict(d_model=64, nhead=4, dim_feedforward=128)


@register("transformer")
def build_transformer(dataset=None, *, vocab_size=None, n_classes=None, max_len=None, per_token=None, **options):
    """A ``TransformerClassifier`` sized for ``dataset`` (a sequence task) or for the given sizes; a
    ``TransformerTagger`` when ``per_token`` (default: the dataset's ``info["per_token"]``).

    >>> from gradflow.data.synthetic import sequence_task
    >>> type(build_transformer(sequence_task("reverse", n_train=2, n_test=1, length=5))).__name__
    'TransformerTagger'
    """
    if dataset is not None:
        vocab_size = vocab_size or dataset.info["vocab_size"]
        n_classes = n_classes or dataset.n_classes
        max_len = max_len or dataset.x_train.shape[1]
        per_token = dataset.info.get("per_token", False) if per_token is None else per_token
    if None in (vocab_size, n_classes, max_len):
        raise ValueError("build_transformer needs a dataset or vocab_size, n_classes and max_len")
    if per_token:
        return TransformerTagger(vocab_size, n_classes, max_len, **{**TAGGER_OPTIONS, **options})
    return TransformerClassifier(vocab_size, n_classes, max_len, **options)


# Data sizes per task: the sequence-to-sequence tasks use shorter sequences over a larger
# vocabulary than the classifiers, and more examples (a whole sequence must come out right).
TASK_DATA = {"copy": dict(length=10, vocab_size=10, n_train=10000),
             "reverse": dict(length=10, vocab_size=10, n_train=10000),
             "sort": dict(length=10, vocab_size=10, n_train=10000)}


def load_data(task=None, seed=0):
    """The family's data: a synthetic sequence task (``majority`` by default)."""
    task = task or DEFAULT_TASK
    return sequence_task(task, seed=seed, **TASK_DATA.get(task, {}))


DEFAULT_TASK = "majority"
# ``gradflow train`` defaults per task (flags win). copy and reverse are routing, learned in one
# epoch; sort reaches 99% whole-sequence accuracy by epoch 4-5 at this lr and batch, where 3e-3
# at batch 64 learns as fast but swings between epochs (measured in the README).
TASK_TRAINING = {"copy": dict(epochs=2, lr=2e-3, batch_size=128),
                 "reverse": dict(epochs=2, lr=2e-3, batch_size=128),
                 "sort": dict(epochs=6, lr=2e-3, batch_size=128)}
build_transformer.load_data = load_data
build_transformer.default_task = DEFAULT_TASK
build_transformer.task_training = TASK_TRAINING
build_transformer.tasks = tuple(sorted(SEQUENCE_TASKS))
