"""Optimizers against PyTorch's published formulas, a few steps by hand; state_dict; l2 penalty."""
import math

import numpy as np
import pytest

import gradflow as gf
import gradflow.optim as optim
from gradflow import nn
from gradflow.nn.functional import l2_penalty

GRADS = [np.array([0.5, -1.0]), np.array([0.25, 2.0]), np.array([-0.75, 0.5])]


def run(opt_factory, start=(1.0, -2.0)):
    """Apply the fixed gradient sequence GRADS through the optimizer; return the parameter after each."""
    w = nn.Parameter(gf.tensor(np.array(start)))
    opt = opt_factory([w])
    history = []
    for g in GRADS:
        w.grad = gf.tensor(g)
        opt.step()
        history.append(w.data.copy())
    return history


def hand_sgd(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, start=(1.0, -2.0)):
    p, b, history = np.array(start), None, []
    for g in GRADS:
        d = g + weight_decay * p
        if momentum:
            b = d.copy() if b is None else momentum * b + (1 - dampening) * d
            d = d + momentum * b if nesterov else b
        p = p - lr * d
        history.append(p)
    return history


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, dampening=0.5),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.05, momentum=0.5, weight_decay=0.1),
])
def test_sgd_matches_formula(kwargs):
    for got, want in zip(run(lambda p: optim.SGD(p, **kwargs)), hand_sgd(**kwargs)):
        np.testing.assert_allclose(got, want, rtol=1e-14)


def hand_adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    p, m, v, history = np.array([1.0, -2.0]), 0.0, 0.0, []
    for t, g in enumerate(GRADS, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        p = p - lr * (m / (1 - betas[0] ** t)) / (np.sqrt(v / (1 - betas[1] ** t)) + eps)
        history.append(p)
    return history


@pytest.mark.parametrize("cls, kwargs, decoupled", [
    (optim.Adam, dict(lr=0.01), False),
    (optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1), False),
    (optim.AdamW, dict(lr=0.01, weight_decay=0.1), True),
])
def test_adam_matches_formula(cls, kwargs, decoupled):
    for got, want in zip(run(lambda p: cls(p, **kwargs)), hand_adam(decoupled=decoupled, **kwargs)):
        np.testing.assert_allclose(got, want, rtol=1e-13)


def test_adam_first_step_is_lr_times_sign():
    w = nn.Parameter(gf.tensor([3.0, -4.0], dtype="float64"))
    opt = optim.Adam([w], lr=0.1)
    w.grad = gf.tensor([10.0, -0.001], dtype="float64")
    opt.step()
    np.testing.assert_allclose(w.data, [2.9, -3.9], atol=1e-6)


def test_l2_penalty_equals_sgd_weight_decay():
    """The textbook's J = L + λ/2 Σ‖W‖² and SGD(weight_decay=λ) make the same update."""
    lam = 0.01
    x, y = gf.randn(8, 5, dtype="float64"), gf.tensor(np.arange(8) % 3)
    gf.manual_seed(1)
    a = nn.MLP([5, 7, 3]).to(gf.float64)
    b = nn.MLP([5, 7, 3]).to(gf.float64)
    b.load_state_dict(a.state_dict())
    opt_a = optim.SGD(a.parameters(), lr=0.5)
    opt_b = optim.SGD(b.parameters(), lr=0.5, weight_decay=lam)
    for _ in range(3):
        loss_a = gf.nn.functional.cross_entropy(a(x), y) + l2_penalty(a.parameters(), lam)
        opt_a.zero_grad(); loss_a.backward(); opt_a.step()
        loss_b = gf.nn.functional.cross_entropy(b(x), y)
        opt_b.zero_grad(); loss_b.backward(); opt_b.step()
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12, atol=1e-14)


def test_parameters_without_grad_are_skipped_and_zero_grad():
    w, v = nn.Parameter(gf.ones(2)), nn.Parameter(gf.ones(2))
    opt = optim.SGD([w, v], lr=1.0)
    (w * 2).sum().backward()
    opt.step()
    assert w.tolist() == [-1.0, -1.0] and v.tolist() == [1.0, 1.0]
    opt.zero_grad()
    assert w.grad is None


def test_update_does_not_record_graph():
    w = nn.Parameter(gf.ones(2))
    opt = optim.Adam([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    assert w.is_leaf and w.grad_fn is None


def test_param_groups_and_errors():
    a, b = nn.Parameter(gf.ones(1)), nn.Parameter(gf.ones(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="twice"):
        optim.SGD([a, a], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([a], lr=0.1, nesterov=True)


@pytest.mark.parametrize("factory", [lambda p: optim.SGD(p, lr=0.1, momentum=0.9),
                                     lambda p: optim.Adam(p, lr=0.01)])
def test_state_dict_resume_equals_uninterrupted(factory):
    straight = run(factory)
    w = nn.Parameter(gf.tensor(np.array([1.0, -2.0])))
    opt = factory([w])
    w.grad = gf.tensor(GRADS[0])
    opt.step()
    saved_w, saved_state = w.data.copy(), opt.state_dict()
    w2 = nn.Parameter(gf.tensor(saved_w))
    opt2 = factory([w2])
    opt2.load_state_dict(saved_state)
    for g in GRADS[1:]:
        w2.grad = gf.tensor(g)
        opt2.step()
    np.testing.assert_allclose(w2.data, straight[-1], rtol=1e-14)


def test_load_state_dict_mismatch_raises_and_keeps_state():
    w = nn.Parameter(gf.ones(3))
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    other = optim.SGD([nn.Parameter(gf.ones(2))], lr=0.1, momentum=0.9)
    (w * w).sum().backward()
    opt.step()
    other_param = other.param_groups[0]["params"][0]
    other_param.grad = gf.ones(2)
    other.step()
    state = opt.state_dict()
    with pytest.raises(ValueError, match=r"momentum_buffer of parameter 0 has shape \(3,\).*\(2,\)"):
        other.load_state_dict(state)
    assert other.state[other_param]["momentum_buffer"].shape == (2,)
    with pytest.raises(ValueError, match="group 0 has 1 parameters, this optimizer.s has 2"):
        optim.SGD([w, other_param], lr=0.1).load_state_dict(state)


def test_step_lr_and_cosine():
    w = nn.Parameter(gf.ones(1))
    opt = optim.SGD([w], lr=1.0)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        lrs.append(sched.get_last_lr()[0])
        sched.step()
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25]
    opt = optim.SGD([w], lr=0.1)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        sched.step()
    want = [0.01 + 0.09 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(5)]
    np.testing.assert_allclose(lrs, want)
    assert lrs[-1] == pytest.approx(0.01)
    again = optim.lr_scheduler.CosineAnnealingLR(optim.SGD([w], lr=0.1), T_max=4, eta_min=0.01)
    again.load_state_dict({"last_epoch": 2, "base_lrs": [0.1]})
    assert again.get_last_lr()[0] == pytest.approx(want[2])


@pytest.mark.parametrize("factory, name", [
    (lambda p, v: optim.SGD(p, lr=v), "lr"),
    (lambda p, v: optim.SGD(p, lr=0.1, momentum=v), "momentum"),
    (lambda p, v: optim.SGD(p, lr=0.1, weight_decay=v), "weight_decay"),
    (lambda p, v: optim.Adam(p, lr=v), "lr"),
    (lambda p, v: optim.Adam(p, weight_decay=v), "weight_decay"),
    (lambda p, v: optim.Adam(p, eps=v), "eps"),
    (lambda p, v: optim.AdamW(p, weight_decay=v), "weight_decay"),
])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.5])
def test_non_finite_or_negative_hyperparameters_are_refused(factory, name, value):
    # NaN passes every `< 0` test, so a plain sign check lets it through to a NaN loss.
    with pytest.raises(ValueError, match=rf"\b{name} must be a finite number >= 0, got {value}"):
        factory([nn.Parameter(gf.ones(2))], value)


def test_nan_betas_are_refused():
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([nn.Parameter(gf.ones(2))], betas=(math.nan, 0.999))


def test_param_group_overrides_are_checked_too():
    p, q = nn.Parameter(gf.ones(2)), nn.Parameter(gf.ones(2))
    with pytest.raises(ValueError, match=r"SGD param group 1: lr must be a finite number >= 0, got nan"):
        optim.SGD([{"params": [p]}, {"params": [q], "lr": math.nan}], lr=0.1)
