"""The activations built from primitives: modules agree with the functions, both agree with
PyTorch's forward and gradient (kinks and saturated regions included), and nothing overflows into
NaN in backward. Gradients at the kinks, in the table's words, are checked here; the op table
covers the smooth parts (gradcheck, second order, JVP, float32)."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F

POINTS = np.array([-100.0, -30.0, -3.5, -3.0, -1.0, 0.0, 0.5, 1.0, 3.0, 6.0, 7.0, 25.0, 800.0])

CASES = [  # (gradflow function, module, torch name, args)
    (F.elu, nn.ELU(), "elu", ()),
    (lambda x: F.elu(x, 0.5), nn.ELU(0.5), "elu", (0.5,)),
    (F.selu, nn.SELU(), "selu", ()),
    (lambda x: F.celu(x, 0.7), nn.CELU(0.7), "celu", (0.7,)),
    (F.mish, nn.Mish(), "mish", ()),
    (F.hardswish, nn.Hardswish(), "hardswish", ()),
    (F.hardsigmoid, nn.Hardsigmoid(), "hardsigmoid", ()),
    (F.logsigmoid, nn.LogSigmoid(), "logsigmoid", ()),
    (F.softsign, nn.Softsign(), "softsign", ()),
    (F.relu6, nn.ReLU6(), "relu6", ()),
    (F.hardtanh, nn.Hardtanh(), "hardtanh", ()),
    (lambda x: F.hardtanh(x, -2.0, 3.0), nn.Hardtanh(-2.0, 3.0), "hardtanh", (-2.0, 3.0)),
    (lambda x: F.softplus(x, 2.0, 5.0), nn.Softplus(2.0, 5.0), "softplus", (2.0, 5.0)),
    (F.softplus, nn.Softplus(), "softplus", ()),
    (lambda x: F.softmin(x, 0), nn.Softmin(0), "softmin", (0,)),
]
IDS = ["elu", "elu_alpha", "selu", "celu", "mish", "hardswish", "hardsigmoid", "logsigmoid", "softsign", "relu6",
       "hardtanh", "hardtanh_range", "softplus_beta", "softplus", "softmin"]


@pytest.mark.parametrize("function, module, torch_name, args", CASES, ids=IDS)
def test_module_is_the_function(function, module, torch_name, args):
    x = gf.randn(4, 5)
    np.testing.assert_array_equal(module(x).numpy(), function(x).numpy())


@pytest.mark.parametrize("function, module, torch_name, args", CASES, ids=IDS)
def test_forward_and_gradient_match_pytorch_with_kinks_and_saturation(function, module, torch_name, args):
    torch = pytest.importorskip("torch")
    x = gf.tensor(POINTS, requires_grad=True)
    out = function(x)
    out.backward(gf.ones_like(out))
    t = torch.tensor(POINTS, requires_grad=True)
    expected = getattr(torch.nn.functional, torch_name)(t, *args)
    expected.backward(torch.ones_like(expected))
    assert np.isfinite(x.grad.numpy()).all()
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-15)
    # PyTorch rounds some constants (1/6, 1/alpha) to float32 inside its kernels: 1e-7 relative.
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-7, atol=1e-12)


def test_float32_saturation_stays_finite():
    x = gf.tensor([-1e4, -90.0, 90.0, 1e4], requires_grad=True)
    total = sum(f(x).sum() for f in (F.elu, F.selu, F.celu, F.mish, F.logsigmoid, F.softsign, F.softplus))
    total.backward()
    assert x.grad.dtype == np.float32 and np.isfinite(x.grad.numpy()).all()


def test_argument_errors():
    with pytest.raises(ValueError, match="beta must be positive"):
        F.softplus(gf.ones(2), beta=0)
    with pytest.raises(ValueError, match="min_val"):
        nn.Hardtanh(2.0, 1.0)
    with pytest.raises(ValueError, match="nonzero"):
        F.celu(gf.ones(2), 0.0)


def test_softplus_threshold_none_never_switches():
    x = gf.tensor([30.0], dtype="float64")
    assert F.softplus(x, threshold=None).item() == pytest.approx(30.0 + np.exp(-30.0), rel=0, abs=1e-15)
    assert F.softplus(x).item() == 30.0
    assert repr(nn.Softplus(2.0, 5.0)) == "Softplus(beta=2.0, threshold=5.0)"


@pytest.mark.parametrize("name", ["elu", "selu", "celu", "mish", "hardswish", "hardsigmoid", "softsign", "relu6",
                                  "hardtanh"])
def test_mlp_accepts_the_new_activations_by_name(name):
    model = nn.MLP([4, 5, 2], activation=name)
    assert type(model[1]) is nn.ACTIVATION_MODULES[name]
    x = gf.randn(3, 4)
    np.testing.assert_array_equal(model(x).numpy(), model[2](model[1](model[0](x))).numpy())


def test_top_level_names_where_pytorch_has_them():
    # torch.selu and torch.celu exist at top level (torch.elu, torch.mish... do not).
    assert gf.selu is F.selu and gf.celu is F.celu
    x = gf.tensor([-1.0, 0.5])
    np.testing.assert_array_equal(gf.celu(x, 0.7).numpy(), F.celu(x, 0.7).numpy())
