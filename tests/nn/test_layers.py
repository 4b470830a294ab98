"""Layers and activations: shapes, PyTorch init ranges, seeding, and agreement with functional."""
import math

import numpy as np
import pytest

import gradflow as gf
from gradflow import nn
from gradflow.nn import functional as F


def test_linear_shapes_and_init_bounds():
    gf.manual_seed(1)
    layer = nn.Linear(100, 30)
    assert layer.weight.shape == (30, 100) and layer.bias.shape == (30,)
    bound = 1 / math.sqrt(100)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.weight.data).max() > 0.9 * bound
    assert np.abs(layer.bias.data).max() <= bound
    assert nn.Linear(3, 2, bias=False).bias is None
    assert [n for n, _ in nn.Linear(3, 2, bias=False).named_parameters()] == ["weight"]


def test_init_is_seeded():
    gf.manual_seed(7)
    a = nn.MLP([5, 4, 2])
    gf.manual_seed(7)
    b = nn.MLP([5, 4, 2])
    assert all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("fn, std", [
    (lambda t: nn.init.kaiming_normal_(t, nonlinearity="relu"), math.sqrt(2 / 400)),
    (lambda t: nn.init.kaiming_uniform_(t, nonlinearity="relu"), math.sqrt(2 / 400)),
    (lambda t: nn.init.xavier_normal_(t), math.sqrt(2 / 600)),
    (lambda t: nn.init.xavier_uniform_(t), math.sqrt(2 / 600)),
])
def test_init_statistics(fn, std):
    gf.manual_seed(0)
    w = fn(gf.empty(200, 400, dtype="float64"))
    assert abs(w.data.std() / std - 1) < 0.02 and abs(w.data.mean()) < 0.05 * std


def test_calculate_gain():
    assert nn.init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert nn.init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="unsupported"):
        nn.init.calculate_gain("swish")


@pytest.mark.parametrize("module, function", [
    (nn.ReLU(), F.relu), (nn.GELU(), F.gelu), (nn.Sigmoid(), F.sigmoid), (nn.Tanh(), F.tanh),
    (nn.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)), (nn.Softplus(), F.softplus),
])
def test_activation_modules_match_functional(module, function):
    x = gf.randn(4, 5)
    np.testing.assert_array_equal(module(x).data, function(x).data)


def test_softplus_beta():
    x = gf.randn(6, dtype="float64")
    np.testing.assert_allclose(nn.Softplus(beta=2)(x).data, np.log1p(np.exp(2 * x.data)) / 2, rtol=1e-12)


def test_dropout_train_and_eval():
    x = gf.ones(1000, 10)
    layer = nn.Dropout(0.3)
    out = layer(x).data
    assert set(np.unique(out)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((out == 0).mean() - 0.3) < 0.03
    layer.eval()
    assert layer(x) is x


def test_flatten_and_sequential_indexing():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    assert model(gf.randn(5, 3, 4)).shape == (5, 2)
    assert isinstance(model[1], nn.Linear) and len(model) == 2 and len(model[1:]) == 1


def test_mlp_structure_and_errors():
    model = nn.MLP([8, 16, 16, 3], activation="tanh", dropout=0.1)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout", "Linear"]
    assert model(gf.randn(2, 8)).shape == (2, 3)
    assert type(nn.MLP([2, 3, 1], activation=nn.GELU)[1]) is nn.GELU
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        nn.MLP([2, 3, 1], activation="swish")
    with pytest.raises(ValueError, match="at least an input and an output"):
        nn.MLP([2])
