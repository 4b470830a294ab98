"""The GPU step's kernels compiled for the CPU against their NumPy twins (numpy_twins.py):
cross-entropy with the output bias added in the kernel, its stable loss form at large logits,
the per-row bad-label flags, the bias gradient's column sum, and multi-tensor Adam (with float32
master weights for float16 parameters). Tolerances as in test_host_kernels.py."""
import numpy as np
import pytest

from gradflow.backends import numpy_twins as twin
from test_host_kernels import DTYPES, LAUNCHES, assert_agree, logits_cases


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_xent_with_bias_matches_twin(host_kernels, dtype, launch):
    logits, labels = logits_cases(dtype)
    bias = np.random.default_rng(3).normal(0, 2, logits.shape[1]).astype(dtype)
    with np.errstate(all="ignore"):
        want = twin.softmax_xent_forward(logits, labels, bias=bias)
        want_gz = twin.softmax_xent_backward(logits, labels, 0.25, bias=bias)
    got = host_kernels.softmax_xent_forward(logits, labels, bias=bias, launch=launch)
    finite = np.where(np.isfinite(logits), np.abs(logits), 0).max(axis=1) + np.abs(bias).max()
    assert_agree(got, want, 4 + logits.shape[1], finite + 1, "softmax xent loss with bias")
    gz = host_kernels.softmax_xent_backward(logits, labels, 0.25, bias=bias, launch=launch)
    assert_agree(gz, want_gz, 4 + logits.shape[1], 0.25, "softmax xent gradient with bias")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_scale_read_on_the_device_times_a_host_factor(host_kernels, dtype):
    """The upstream gradient as an array the kernel reads (0-d: stride 0; per row: stride 1)
    times 1/N passed by value equals the twin's scale * factor."""
    logits, labels = logits_cases(dtype)
    finite = np.flatnonzero(np.isfinite(logits).all(axis=1))[:8]
    logits, labels = logits[finite], labels[finite]
    assert len(labels) == 8
    for scale in (np.array(3.0, dtype), np.linspace(0.5, 2, 8).astype(dtype)):
        want = twin.softmax_xent_backward(logits, labels, scale, factor=1 / 8)
        got = host_kernels.softmax_xent_backward(logits, labels, scale, factor=1 / 8)
        row_scale = np.broadcast_to(np.abs(np.reshape(scale, (-1, 1))), logits.shape)
        assert_agree(got, want, 4 + logits.shape[1], row_scale, "scaled softmax xent gradient")


def test_loss_at_logits_near_1e4_keeps_its_digits(host_kernels):
    """log Σ e^(x - max) + (max - x_label): at logits ~1e4 in float32 the old order
    (log Σ + max) - x_label rounded the logsumexp to the logits' spacing (0.23828 for 0.23813)."""
    logits = np.array([[1e4, 1e4 - 1.5, 1e4 - 3.0, 1e4 - 9.0],
                       [-1e4, -1e4 + 0.25, -1e4 - 2.0, -1e4 - 0.5]], dtype=np.float32)
    labels = np.array([0, 1])
    exact = [np.logaddexp.reduce(row.astype(np.float64)) - row.astype(np.float64)[label]
             for row, label in zip(logits, labels)]
    for got in (host_kernels.softmax_xent_forward(logits, labels),
                twin.softmax_xent_forward(logits, labels)):
        np.testing.assert_allclose(got, exact, rtol=2e-6)
    old_order = (np.log(np.exp(logits[0] - 1e4).sum()) + np.float32(1e4)) - logits[0, 0]
    assert abs(old_order - exact[0]) > 1e-4  # the bug this guards against is real


def test_bad_labels_are_flagged_per_row(host_kernels):
    loss, flags = host_kernels.softmax_xent_forward(np.zeros((4, 3)), [0, 3, -1, 2], with_flags=True)
    np.testing.assert_array_equal(flags, [0, 1, 1, 0])
    assert np.isnan(loss[1:3]).all() and np.isfinite(loss[[0, 3]]).all()


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_column_sum_matches_twin(host_kernels, dtype, launch):
    a = np.random.default_rng(4).normal(size=(37, 10)).astype(dtype)
    assert_agree(host_kernels.column_sum(a, launch=launch), twin.column_sum(a), 37, np.abs(a).sum(0),
                 "column sum")


def _adam_state(shapes, dtype, state_dtype, seed):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s).astype(dtype) for s in shapes]
    return (params, [np.zeros(s, state_dtype) for s in shapes], [np.zeros(s, state_dtype) for s in shapes])


# Shapes with an empty tensor in the middle: the offset table repeats a value there.
SHAPES = [(7, 5), (0,), (5,), (1,), (33,)]


@pytest.mark.parametrize("launch", [(1, 1), (3, 32), (64, 256)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
def test_multi_tensor_adam_matches_twin(host_kernels, dtype, decoupled, launch):
    ours, theirs = _adam_state(SHAPES, dtype, dtype, 1), _adam_state(SHAPES, dtype, dtype, 1)
    rng = np.random.default_rng(2)
    for step in range(1, 5):
        grads = [rng.normal(size=s).astype(dtype) for s in SHAPES]
        kwargs = dict(step=step, lr=1e-2, weight_decay=1e-2, decoupled=decoupled)
        host_kernels.adam_multi_tensor(*ours[:1], grads, *ours[1:], launch=launch, **kwargs)
        twin.adam_update_multi(*theirs[:1], grads, *theirs[1:], **kwargs)
        for what, got_list, want_list in zip(["param", "exp_avg", "exp_avg_sq"], ours, theirs):
            for got, want in zip(got_list, want_list):
                assert_agree(got, want, 4 * step, 1.0 if what == "param" else 0.0, f"multi adam {what}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_multi_tensor_adam_reads_the_step_count_from_the_device(host_kernels, dtype):
    """A replayed CUDA graph passes the arguments it was captured with: with ``step_count`` the
    kernel computes the bias corrections from the step number in device memory (the by-value
    ones are NaN here), and gives the twin's numbers step after step with the same arguments."""
    ours, theirs = _adam_state(SHAPES, dtype, dtype, 3), _adam_state(SHAPES, dtype, dtype, 3)
    rng = np.random.default_rng(4)
    step_count = np.zeros(1, np.int64)
    for step in range(1, 6):
        step_count += 1  # what the optimizer's increment launch does before the kernel
        grads = [rng.normal(size=s).astype(dtype) for s in SHAPES]
        kwargs = dict(lr=1e-2, weight_decay=1e-2, decoupled=True)
        host_kernels.adam_multi_tensor(*ours[:1], grads, *ours[1:], step=1, step_count=step_count,
                                       launch=(3, 32), **kwargs)
        twin.adam_update_multi(*theirs[:1], grads, *theirs[1:], step=step, **kwargs)
        for what, got_list, want_list in zip(["param", "exp_avg", "exp_avg_sq"], ours, theirs):
            for got, want in zip(got_list, want_list):
                assert_agree(got, want, 4 * step, 1.0 if what == "param" else 0.0, f"adam {what}")
    # The twin takes the counter too, and agrees with itself by value.
    again = _adam_state(SHAPES, dtype, dtype, 3)
    rng = np.random.default_rng(4)
    for step in range(1, 6):
        grads = [rng.normal(size=s).astype(dtype) for s in SHAPES]
        twin.adam_update_multi(*again[:1], grads, *again[1:], step=None,
                               step_count=np.array([step], np.int64), lr=1e-2, weight_decay=1e-2,
                               decoupled=True)
    for got_list, want_list in zip(again, theirs):
        for got, want in zip(got_list, want_list):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("launch", [(1, 1), (3, 32)])
def test_float16_adam_updates_float32_masters(host_kernels, launch):
    """float16 parameters with float32 master weights and moments: the master is the float32
    Adam trajectory and the parameter is it rounded to half; gradients of 1e-3 (whose squares
    underflow in half) still move the parameter."""
    if not host_kernels.has_half:
        pytest.skip("cuda_fp16.h not found: no host build of the __half kernels")
    shapes = [(6, 4), (5,)]
    params = [np.full(s, 0.5, np.float16) for s in shapes]
    theirs = [p.copy() for p in params]
    masters = [p.astype(np.float32) for p in params]
    their_masters = [m.copy() for m in masters]
    state = [[np.zeros(s, np.float32) for s in shapes] for _ in range(2)]
    their_state = [[np.zeros(s, np.float32) for s in shapes] for _ in range(2)]
    for step in range(1, 21):
        grads = [np.full(s, 1e-3, np.float16) for s in shapes]
        host_kernels.adam_multi_tensor(params, grads, *state, step, 1e-4, masters=masters, launch=launch)
        twin.adam_update_multi(theirs, grads, *their_state, step, 1e-4, masters=their_masters)
    for got, want, master, their_master in zip(params, theirs, masters, their_masters):
        assert_agree(master, their_master, 80, 1.0, "float32 master weights")
        np.testing.assert_array_equal(got, master.astype(np.float16))
    # 20 steps of lr 1e-4 against a constant gradient: the float32 Adam path moves by ~20 * lr.
    np.testing.assert_allclose(masters[0], 0.5 - 20 * 1e-4, rtol=1e-4)
    assert (params[0] < np.float16(0.5)).all()


SGD_MULTI_CASES = [dict(momentum=0.0, weight_decay=1e-2), dict(momentum=0.9, dampening=0.1),
                   dict(momentum=0.9, nesterov=True, weight_decay=5e-4)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SGD_MULTI_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_multi_tensor_sgd_matches_twin(host_kernels, case, dtype):
    rng = np.random.default_rng(5)
    start = [rng.normal(size=s).astype(dtype) for s in SHAPES]
    ours, theirs = [p.copy() for p in start], [p.copy() for p in start]
    buffers = None if not case["momentum"] else [np.zeros_like(p) for p in start]
    their_buffers = None if buffers is None else [b.copy() for b in buffers]
    for step in range(4):
        grads = [rng.normal(size=s).astype(dtype) for s in SHAPES]
        host_kernels.sgd_multi_tensor(ours, grads, buffers, 0.05, first_step=step == 0,
                                      launch=(3, 32), **case)
        twin.sgd_update_multi(theirs, grads, their_buffers, 0.05, first_step=step == 0, **case)
        for got, want in zip(ours, theirs):
            assert_agree(got, want, 4 * (step + 1), 1.0, f"multi sgd param step {step}")
        for got, want in zip(buffers or [], their_buffers or []):
            assert_agree(got, want, 4 * (step + 1), 1.0, f"multi sgd buffer step {step}")
