"""The batch-size profiler: fits on 32-512 predict the measured peak at 2048 within 5%."""
import pytest

import gradflow as gf
import gradflow.optim  # noqa: F401  (not yet exported from gradflow/__init__.py)
import gradflow.memory as M
import gradflow.nn.functional as F

from memory_models import H, Q, make_batch, textbook_loss

SWEEP = [32, 64, 128, 256, 512]


@pytest.mark.parametrize("name", ["textbook", "six_layer"])
def test_fit_predicts_the_measured_peak_at_2048(name, request):
    model = request.getfixturevalue(name)
    loss = textbook_loss(model) if name == "textbook" else None
    optimizer = gf.optim.Adam(model.parameters()) if name == "six_layer" else gf.optim.SGD(model.parameters(), lr=0.1)
    result = M.profile(model, make_batch, SWEEP, optimizer=optimizer, loss_fn=loss)
    measured = M.measure_step(model, make_batch, 2048, optimizer, loss)
    for field in ("training_peak", "inference_peak", "retained"):
        predicted = result.predict(2048, field)
        assert abs(predicted / measured[field] - 1) < 0.05, (field, predicted, measured[field])
    if name == "textbook":
        assert result.fits["retained"].per_example == pytest.approx(4 * (H + Q))
    budget = result.predict(1000)
    assert 995 <= result.max_batch(budget) <= 1000
    assert result.max_batch(budget, inference=True) > 1000
    assert "train peak" in result.table() and result.to_dict()["fits"]["training_peak"]["per_example_bytes"] > 0


def test_profile_restores_parameters_and_rejects_bad_sizes(textbook):
    before = [p.numpy().copy() for p in textbook.parameters()]
    M.profile(textbook, make_batch, [8, 16], optimizer=gf.optim.SGD(textbook.parameters(), lr=1.0))
    assert all((a == p.numpy()).all() for a, p in zip(before, textbook.parameters()))
    with pytest.raises(ValueError, match="positive"):
        M.profile(textbook, make_batch, [0, 8])
    assert M.parse_bytes("8GiB") == 8 * 2 ** 30 and M.parse_bytes("1.5kB") == 1500
    with pytest.raises(ValueError, match="8GiB"):
        M.parse_bytes("eight")


@pytest.mark.gpu
def test_retained_bytes_agree_with_the_cupy_pool():
    gf.manual_seed(0)
    model = gf.nn.MLP([784, 256, 256, 10]).to("cuda")
    x, y = gf.randn(512, 784, device="cuda"), gf.randint(0, 10, (512,), device="cuda")
    with M.meter("cuda") as m, M.track() as t:
        loss = F.cross_entropy(model(x), y)
        held = m.current
    assert abs(held - t.retained_bytes) <= max(0.02 * t.retained_bytes, 64 * 1024), (held, t.retained_bytes)
    loss.backward()
