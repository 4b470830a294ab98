"""Fixtures: the textbook MLP and a 6-layer ReLU MLP (see memory_models.py)."""
import os
import sys

import pytest

import gradflow as gf

# The test modules import memory_models by name, whatever pytest's import mode.
sys.path.insert(0, os.path.dirname(__file__))
from memory_models import D, H, Q


@pytest.fixture
def textbook():
    gf.manual_seed(0)
    return gf.nn.MLP([D, H, Q], bias=False)


@pytest.fixture
def six_layer():
    gf.manual_seed(0)
    return gf.nn.MLP([D, H, H, H, H, H, Q])
