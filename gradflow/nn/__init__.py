"""Neural-network building blocks (``gradflow.nn``): Module, Parameter, layers, activations, init.

>>> import gradflow as gf
>>> model = gf.nn.MLP([64, 256, 10])
>>> loss = gf.nn.functional.cross_entropy(model(gf.randn(8, 64)), gf.tensor([0, 1, 2, 3, 4, 5, 6, 7]))
>>> loss.backward()
"""
from . import functional, init
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .norm import BatchNorm1d, BatchNorm2d, GroupNorm
from .activations import ACTIVATION_MODULES, GELU, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from .activations import (CELU, ELU, SELU, Hardsigmoid, Hardswish, Hardtanh, LogSigmoid, Mish, ReLU6, Softmin,
                          Softsign)
from .layers import MLP, Dropout, Flatten, Linear, ModuleList, Sequential, Unflatten
from .module import IncompatibleKeys, Module
from .parameter import Parameter
from .pooling import (AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d, MaxUnpool1d,
                      MaxUnpool2d, Upsample, UpsamplingBilinear2d, UpsamplingNearest2d)
from .transformer import Embedding, LayerNorm, MultiheadAttention, TransformerEncoderLayer
from .transformer_stack import Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder

__all__ = ["functional", "init", "Module", "Parameter", "Linear", "Sequential", "Dropout", "Flatten", "MLP",
           "ReLU", "GELU", "Sigmoid", "Tanh", "LeakyReLU", "Softplus", "ACTIVATION_MODULES", "IncompatibleKeys",
           "ELU", "SELU", "CELU", "Mish", "Hardswish", "Hardsigmoid", "LogSigmoid", "Softsign", "ReLU6", "Hardtanh",
           "Softmin"]
__all__ += ["Conv1d", "Conv2d", "ConvTranspose2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d",
            "BatchNorm2d", "GroupNorm", "Unflatten"]
__all__ += ["LayerNorm", "Embedding", "MultiheadAttention", "TransformerEncoderLayer"]
__all__ += ["MaxPool1d", "AvgPool1d", "MaxUnpool1d", "MaxUnpool2d", "Upsample", "UpsamplingNearest2d",
            "UpsamplingBilinear2d"]
__all__ += ["ModuleList", "TransformerEncoder", "TransformerDecoderLayer", "TransformerDecoder", "Transformer"]
