"""Neural-network building blocks (``gradflow.nn``): Module, Parameter, layers, activations, init.

>>> import gradflow as gf
>>> model = gf.nn.MLP([64, 256, 10])
>>> loss = gf.nn.functional.cross_entropy(model(gf.randn(8, 64)), gf.tensor([0, 1, 2, 3, 4, 5, 6, 7]))
>>> loss.backward()
"""
from . import functional, init
from .activations import ACTIVATION_MODULES, GELU, LeakyReLU, ReLU, Sigmoid, Softplus, Tanh
from .layers import MLP, Dropout, Flatten, Linear, Sequential
from .module import IncompatibleKeys, Module
from .parameter import Parameter
from .transformer import Embedding, LayerNorm, MultiheadAttention, TransformerEncoderLayer

__all__ = ["functional", "init", "Module", "Parameter", "Linear", "Sequential", "Dropout", "Flatten", "MLP",
           "ReLU", "GELU", "Sigmoid", "Tanh", "LeakyReLU", "Softplus", "ACTIVATION_MODULES", "IncompatibleKeys"]
__all__ += ["LayerNorm", "Embedding", "MultiheadAttention", "TransformerEncoderLayer"]
