"""The CNN family: conv–BatchNorm–ReLU–max-pool blocks, then a linear classifier.

``cnn(image_shape=(1, 8, 8), n_classes=10)`` is sized for the bundled 8×8 digits: two blocks of
3×3 convolutions (16 then 32 channels, padding 1) each halve the image with a 2×2 max-pool, so
an 8×8 digit leaves 32×2×2 = 128 features for the final Linear. The model takes flat rows
(N, C·H·W), as the datasets store them, and unflattens them first, so ``gradflow train`` feeds it
the same batches as the MLP.

>>> import gradflow as gf
>>> from gradflow.models import build
>>> model = build("cnn")
>>> model(gf.randn(5, 64)).shape
(5, 10)
"""
from __future__ import annotations

import math

from .. import nn
from . import register


@register("cnn")
def cnn(image_shape=(1, 8, 8), n_classes=10, channels=(16, 32), dtype=None, device=None):
    """A LeNet-style CNN: per entry of ``channels`` one Conv2d(3×3, padding 1) → BatchNorm2d → ReLU →
    MaxPool2d(2) block, then Flatten and Linear to ``n_classes``."""
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) == 2:
        image_shape = (1,) + image_shape
    if len(image_shape) != 3:
        raise ValueError(f"cnn needs an image shape (C, H, W) or (H, W), got {image_shape}")
    c, h, w = image_shape
    layers = [nn.Unflatten(1, image_shape)]
    for out_channels in channels:
        if h < 2 or w < 2:
            raise ValueError(f"cnn: {len(channels)} pooling blocks do not fit a {image_shape[1:]} image")
        layers += [nn.Conv2d(c, out_channels, 3, padding=1, bias=False, dtype=dtype, device=device),
                   nn.BatchNorm2d(out_channels, dtype=dtype, device=device), nn.ReLU(), nn.MaxPool2d(2)]
        c, h, w = out_channels, h // 2, w // 2
    layers += [nn.Flatten(), nn.Linear(c * h * w, n_classes, dtype=dtype, device=device)]
    model = nn.Sequential(*layers)
    model.image_shape, model.n_classes = image_shape, n_classes
    model.n_features = math.prod(image_shape)
    return model
