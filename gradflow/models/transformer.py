"""The transformer family: a small encoder classifier over token sequences, and its tasks.

``build("transformer", dataset=sequence_task("majority"))`` sizes the model from the dataset
(vocabulary, classes, sequence length); ``gradflow train --model transformer --task majority``
does the same from the shell. The family's data are the synthetic sequence tasks of
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

    def forward(self, tokens):
        length = tokens.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequences of length {length} are longer than this model's max_len {self.max_len}")
        x = self.embed(tokens) + self.position(np.arange(length))
        x = self.layers(x)
        return self.head(ops.mean(self.norm(x), axis=1))


@register("transformer")
def build_transformer(dataset=None, *, vocab_size=None, n_classes=None, max_len=None, **options):
    """A ``TransformerClassifier`` sized for ``dataset`` (a sequence task) or for the given sizes."""
    if dataset is not None:
        vocab_size = vocab_size or dataset.info["vocab_size"]
        n_classes = n_classes or dataset.n_classes
        max_len = max_len or dataset.x_train.shape[1]
    if None in (vocab_size, n_classes, max_len):
        raise ValueError("build_transformer needs a dataset or vocab_size, n_classes and max_len")
    return TransformerClassifier(vocab_size, n_classes, max_len, **options)


def load_data(task=None, seed=0):
    """The family's data: a synthetic sequence task (``majority`` by default)."""
    return sequence_task(task or DEFAULT_TASK, seed=seed)


DEFAULT_TASK = "majority"
build_transformer.load_data = load_data
build_transformer.tasks = tuple(sorted(SEQUENCE_TASKS))
