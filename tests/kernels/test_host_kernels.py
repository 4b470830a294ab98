"""kernels/ compiled for the CPU against their NumPy twins (gradflow.backends.numpy_kernels).

Tolerances. Both sides evaluate the same formula in the same precision with different libm
implementations (glibc here, NumPy/SciPy's own there), so they may differ by a few ulp per
transcendental call. Where a formula adds terms that cancel (gelu's x·(1 + erf(x/√2)) for x < 0,
gelu_tanh's derivative), both sides lose the same *absolute* accuracy, so the bound is
``ulps · eps · (|want| + scale)`` with ``scale`` the size of the cancelling terms; ``scale`` is 0
where the formula has no cancellation, making the bound purely relative. NaN and ±inf must match
exactly. Sums (bias gradient, softmax normaliser) add the usual n·eps summation bound.
"""
import math

import numpy as np
import pytest

from gradflow.backends import numpy_kernels as twin

DTYPES = [np.float32, np.float64]
LAUNCHES = [(1, 1), (3, 32), (64, 256)]  # one thread; threads that loop; more threads than work


def assert_agree(got, want, ulps, scale=0.0, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.dtype, want.dtype, what)
    finfo = np.finfo(want.dtype)
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    assert np.array_equal(nan_got, nan_want), f"{what}: NaN where the twin has none (or back)"
    inf_want = np.isinf(want)
    assert np.array_equal(got[inf_want], want[inf_want]) and not np.isinf(got[~inf_want]).any(), \
        f"{what}: infinities differ"
    finite = ~(nan_want | inf_want)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), want.shape)[finite]
    g, w = got[finite].astype(np.float64), want[finite].astype(np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        bound = ulps * (finfo.eps * (np.abs(w) + scale) + finfo.smallest_subnormal)
    bound[np.isnan(bound)] = 0.0  # an inf·0 scale must not turn into a bound nothing exceeds
    bad = np.abs(g - w) > bound
    if bad.any():
        i = np.flatnonzero(bad)[0]
        raise AssertionError(f"{what}: {bad.sum()} of {bad.size} differ beyond {ulps} ulp; first: "
                             f"got {g[i]!r}, twin {w[i]!r}, bound {bound[i]:.3g}")


def edge_values(dtype):
    finfo = np.finfo(dtype)
    values = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e4, -1e4, 1.0, -1.0, 0.5, 20.0, -20.0, 88.7,
              -88.7, 1e-30, -1e-30, finfo.smallest_subnormal, -finfo.smallest_subnormal,
              finfo.smallest_normal / 3, -finfo.smallest_normal / 3, finfo.smallest_normal,
              finfo.max, -finfo.max]
    with np.errstate(over="ignore"):
        return np.array(values, dtype=np.float64).astype(dtype)


def inputs(dtype, seed=0, n=3000):
    rng = np.random.default_rng(seed)
    values = np.concatenate([rng.normal(0, 3, n), rng.uniform(-30, 30, n)]).astype(dtype)
    return np.concatenate([values, edge_values(dtype)])


# name: (forward ulps, forward scale(x), derivative ulps, derivative scale(saved)). Scales are
# the magnitudes of the terms each formula adds (see the module docstring).
def _zero(x):
    return 0.0


def _abs(x):
    return np.abs(x.astype(np.float64))


def _one(x):
    return 1.0


def _one_plus_abs(x):
    return 1.0 + np.abs(x.astype(np.float64))


ACTIVATION_TOLERANCES = {
    "relu": (0, _zero, 0, _zero),
    "leaky_relu": (0, _zero, 0, _zero),
    "sigmoid": (4, _zero, 2, _zero),
    "tanh": (4, _zero, 2, _one),
    "gelu": (4, _abs, 4, _one),
    "gelu_tanh": (4, _abs, 8, _one_plus_abs),
    "softplus": (4, _zero, 4, _zero),
    "silu": (4, _zero, 4, _one_plus_abs),
}


def test_the_kernels_know_exactly_the_twins_activations(host_kernels):
    assert host_kernels.saves == twin.ACTIVATION_SAVES
    assert set(ACTIVATION_TOLERANCES) == set(twin.ACTIVATION_SAVES)


def saved_inputs(name, x, alpha=0.01):
    """What the op keeps for backward: its output or its input. Outputs are also fed raw edge
    values, since the kernel must agree with the twin on the formula, not only on its range."""
    if twin.ACTIVATION_SAVES[name] == "x":
        return x
    with np.errstate(all="ignore"):
        return np.concatenate([twin.act_forward(name, x, alpha), edge_values(x.dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(twin.ACTIVATION_SAVES))
def test_activation_forward_matches_twin(host_kernels, name, dtype):
    x = inputs(dtype)
    ulps, scale, _, _ = ACTIVATION_TOLERANCES[name]
    with np.errstate(all="ignore"):
        want = twin.act_forward(name, x, 0.2)
    assert_agree(host_kernels.act_forward(name, x, 0.2), want, ulps, scale(x), f"{name} φ")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(twin.ACTIVATION_SAVES))
def test_activation_derivative_from_saved_matches_twin(host_kernels, name, dtype):
    saved = saved_inputs(name, inputs(dtype), 0.2)
    _, _, ulps, scale = ACTIVATION_TOLERANCES[name]
    with np.errstate(all="ignore"):
        want = twin.act_derivative(name, saved, 0.2)
    assert_agree(host_kernels.act_derivative(name, saved, 0.2), want, ulps, scale(saved),
                 f"{name} φ'")


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(twin.ACTIVATION_SAVES))
def test_activation_backward_matches_twin(host_kernels, name, dtype, launch):
    saved = saved_inputs(name, inputs(dtype, seed=1))
    rng = np.random.default_rng(2)
    g = rng.normal(size=saved.shape).astype(dtype)
    g[:5] = [np.nan, np.inf, -np.inf, 0.0, 1e4]  # upstream gradients can be anything too
    _, _, ulps, scale = ACTIVATION_TOLERANCES[name]
    with np.errstate(all="ignore"):
        want = twin.act_backward(name, g, saved)
    got = host_kernels.act_backward(name, g, saved, launch=launch)
    # g * φ' adds one rounding to φ'; the φ' scale is carried through by |g|.
    with np.errstate(invalid="ignore"):
        gz_scale = scale(saved) * np.abs(g.astype(np.float64))
    assert_agree(got, want, ulps + 1, gz_scale, f"{name} backward")


def test_relu_backward_reads_only_the_output_sign(host_kernels):
    out = np.array([0.0, 0.0, -0.0, 2.0, np.nan, 3.0], dtype=np.float32)
    g = np.array([np.nan, np.inf, 5.0, np.nan, 7.0, -1.0], dtype=np.float32)
    np.testing.assert_array_equal(host_kernels.act_backward("relu", g, out),
                                  [0.0, 0.0, 0.0, np.nan, 0.0, -1.0])


@pytest.mark.parametrize("name", sorted(twin.ACTIVATION_SAVES))
def test_half_computes_in_float_and_rounds_once(host_kernels, name):
    if not host_kernels.has_half:
        pytest.skip("cuda_fp16.h not found (no CUDA toolkit): __half kernels not built for the host")
    x = inputs(np.float16).astype(np.float16)
    x32 = x.astype(np.float32)
    with np.errstate(over="ignore"):
        saved32 = saved_inputs(name, x32).astype(np.float16).astype(np.float32)
    with np.errstate(all="ignore"):
        want_forward = twin.act_forward(name, x32, 0.2).astype(np.float16)
        want_derivative = twin.act_derivative(name, saved32, 0.2).astype(np.float16)
    forward_ulps, forward_scale, derivative_ulps, derivative_scale = ACTIVATION_TOLERANCES[name]
    # A float result a few float ulps from the twin rounds to the same half, or the next one.
    assert_agree(host_kernels.act_forward(name, x, 0.2), want_forward, 1 if forward_ulps else 0,
                 forward_scale(x), f"{name} φ half")
    assert_agree(host_kernels.act_derivative(name, saved32.astype(np.float16), 0.2),
                 want_derivative, 1 if derivative_ulps else 0, derivative_scale(saved32),
                 f"{name} φ' half")


BIAS_SHAPES = [(1, 1), (1, 7), (37, 13), (64, 96), (5, 1000)]


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("shape", BIAS_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["relu", "gelu", "tanh", "leaky_relu"])
def test_bias_activation_forward_matches_twin(host_kernels, name, dtype, shape, launch):
    rng = np.random.default_rng(3)
    x = rng.normal(0, 2, shape).astype(dtype)
    b = rng.normal(0, 1, shape[1]).astype(dtype)
    ulps, scale, _, _ = ACTIVATION_TOLERANCES[name]
    got = host_kernels.bias_act_forward(name, x, b, 0.1, launch=launch)
    assert_agree(got, twin.bias_act_forward(name, x, b, 0.1), ulps, scale(x + b),
                 f"{name} bias forward {shape}")


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("shape", BIAS_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(twin.ACTIVATION_SAVES))
def test_bias_activation_backward_matches_twin(host_kernels, name, dtype, shape, launch):
    rng = np.random.default_rng(4)
    z = rng.normal(0, 2, shape).astype(dtype)
    saved = z if twin.ACTIVATION_SAVES[name] == "x" else twin.act_forward(name, z)
    g = rng.normal(0, 1, shape).astype(dtype)
    want_gz, want_gb = twin.bias_act_backward(name, g, saved)
    gz, gb = host_kernels.bias_act_backward(name, g, saved, launch=launch)
    _, _, ulps, scale = ACTIVATION_TOLERANCES[name]
    assert_agree(gz, want_gz, ulps + 1, scale(saved) * np.abs(g), f"{name} gz {shape}")
    # Row order vs NumPy's pairwise order: within the n·eps bound on a sum of n terms.
    # of n terms, each carrying its own gz error.
    rows = shape[0]
    gz_error_scale = np.abs(want_gz) + scale(saved) * np.abs(g)
    assert_agree(gb, want_gb, ulps + 1 + rows, gz_error_scale.sum(axis=0), f"{name} gb {shape}")


@pytest.mark.parametrize("rows_per_chunk", [1, 3, 16, 37, 100])
def test_bias_backward_sums_each_chunk_then_the_chunks_in_order(host_kernels, rows_per_chunk):
    # Pass 1 sums each chunk of rows per column, pass 2 adds the chunks in order: the same
    # additions done here in the same order give the same float64 bits.
    rng = np.random.default_rng(5)
    g = rng.normal(0, 1, (37, 13))
    saved = twin.act_forward("relu", rng.normal(0, 1, (37, 13)))
    gz, gb = host_kernels.bias_act_backward("relu", g, saved, launch=(3, 32), rows_per_chunk=rows_per_chunk)
    want_gz, _ = twin.bias_act_backward("relu", g, saved)
    np.testing.assert_array_equal(gz, want_gz)
    want_gb = np.zeros(13)
    for col in range(13):
        for start in range(0, 37, rows_per_chunk):
            chunk = 0.0
            for row in range(start, min(start + rows_per_chunk, 37)):
                chunk += want_gz[row, col]
            want_gb[col] += chunk
    np.testing.assert_array_equal(gb, want_gb)


def logits_cases(dtype):
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 4, (40, 10))
    logits[1] += 1e4  # shift invariance: a naive exp overflows
    logits[2] -= 1e4
    logits[3, ::2] = -np.inf  # masked classes
    logits[4] = -np.inf  # everything masked: loss -inf... - (-inf) = NaN, as the twin
    logits[5, 3] = np.inf
    logits[6, 7] = np.nan
    logits[7] = 0.0  # ties everywhere
    logits[8, 0] = 80.0  # exp overflows float32 without the shift
    logits[9, :3] = -np.inf  # leading equal -infs: the running sum must not become inf - inf
    logits[10, [2, 5]] = np.inf  # two +infs: loss +inf (or NaN on the label), as the twin
    labels = rng.integers(0, 10, 40)
    labels[3] = 1  # a label on an unmasked class
    return logits.astype(dtype), labels


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_xent_forward_matches_twin(host_kernels, dtype, launch):
    logits, labels = logits_cases(dtype)
    with np.errstate(all="ignore"):
        want = twin.softmax_xent_forward(logits, labels)
    got = host_kernels.softmax_xent_forward(logits, labels, launch=launch)
    # Sum of `cols` exponentials, then a log and two adds on values as large as the row max.
    finite = np.where(np.isfinite(logits), np.abs(logits), 0).max(axis=1)
    assert_agree(got, want, 4 + logits.shape[1], finite + 1, "softmax xent loss")


def test_softmax_xent_forward_single_class_and_bad_label(host_kernels):
    logits = np.array([[3.0], [-2.0]])
    np.testing.assert_array_equal(host_kernels.softmax_xent_forward(logits, [0, 0]), [0.0, 0.0])
    got = host_kernels.softmax_xent_forward(np.zeros((3, 4)), [0, 4, -1])
    assert got[0] == pytest.approx(math.log(4)) and np.isnan(got[1:]).all()
    # Backward marks the same rows: a plain softmax there would pass for a real gradient.
    gz = host_kernels.softmax_xent_backward(np.zeros((3, 4)), [0, 4, -1], 1.0)
    np.testing.assert_allclose(gz[0], [-0.75, 0.25, 0.25, 0.25])
    assert np.isnan(gz[1:]).all()


@pytest.mark.parametrize("launch", LAUNCHES)
@pytest.mark.parametrize("per_row", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_xent_backward_matches_twin(host_kernels, dtype, per_row, launch):
    logits, labels = logits_cases(dtype)
    scale = np.linspace(0.5, 2, len(labels)).astype(dtype) if per_row else 1.0 / len(labels)
    with np.errstate(all="ignore"):
        want = twin.softmax_xent_backward(logits, labels, scale)
    got = host_kernels.softmax_xent_backward(logits, labels, scale, launch=launch)
    # Probabilities are ≤ 1 and their normaliser is a sum of `cols` terms.
    row_scale = np.broadcast_to(np.abs(np.reshape(scale, (-1, 1))), logits.shape)
    assert_agree(got, want, 4 + logits.shape[1], row_scale, "softmax xent gradient")


@pytest.mark.parametrize("ignore_index", [-100, 3])
@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_xent_ignoring_matches_twin(host_kernels, dtype, ignore_index):
    """Rows labelled ignore_index: loss 0, gradient 0, left out of the mean's count (PyTorch's
    rule); an ignore_index inside [0, C) skips that class's rows."""
    logits, labels = logits_cases(dtype)
    labels = labels.copy()
    labels[::4] = ignore_index
    kept = labels != ignore_index
    with np.errstate(all="ignore"):
        want_rows = twin.softmax_xent_forward(logits, np.where(kept, labels, 0))
        want_rows[~kept] = 0
        want_mean, want_count = twin.softmax_xent_forward_ignoring(logits, labels, ignore_index, "mean")
    got_rows = host_kernels.softmax_xent_forward(logits, labels, ignore_index=ignore_index)
    finite = np.where(np.isfinite(logits), np.abs(logits), 0).max(axis=1)
    assert_agree(got_rows, want_rows, 4 + logits.shape[1], finite + 1, "loss skipping labels")
    assert (got_rows[~kept] == 0).all() and want_count == kept.sum()
    for mean in (True, False):
        total, count = host_kernels.masked_reduce(got_rows, labels, ignore_index, mean)
        assert count == kept.sum()
        with np.errstate(all="ignore"):
            expected = got_rows.astype(np.float64).sum() / (count if mean else 1)
        np.testing.assert_allclose(total, expected, rtol=1e-2 if dtype == np.float16 else 1e-5)
    np.testing.assert_allclose(host_kernels.masked_reduce(got_rows, labels, ignore_index, True)[0], want_mean,
                               rtol=1e-2 if dtype == np.float16 else 1e-5)
    scale = np.array(2.0, dtype)
    with np.errstate(all="ignore"):
        want = twin.softmax_xent_backward(logits, labels, scale, ignore_index=ignore_index, divisor=want_count)
    got = host_kernels.softmax_xent_backward(logits, labels, scale, ignore_index=ignore_index,
                                             divisor=want_count)
    assert (got[~kept] == 0).all()
    assert_agree(got, want, 4 + logits.shape[1], np.full(logits.shape, 2.0 / kept.sum()),
                 "gradient skipping labels")


def test_masked_reduce_of_only_ignored_labels_is_nan(host_kernels):
    total, count = host_kernels.masked_reduce(np.zeros(3), [-100, -100, -100], -100, True)
    assert np.isnan(total) and count == 0
    total, count = host_kernels.masked_reduce(np.ones(3), [-100, -100, -100], -100, False)
    assert total == 0 and count == 0


SGD_CASES = [
    dict(momentum=0.0),
    dict(momentum=0.0, weight_decay=1e-2),
    dict(momentum=0.9),
    dict(momentum=0.9, dampening=0.1, weight_decay=1e-2),
    dict(momentum=0.9, nesterov=True),
    dict(momentum=0.9, nesterov=True, weight_decay=5e-4),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", SGD_CASES, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_sgd_steps_match_twin(host_kernels, case, dtype):
    rng = np.random.default_rng(6)
    param = rng.normal(size=1001).astype(dtype)
    ours = {"param": param.copy(), "buf": np.zeros_like(param) if case["momentum"] else None}
    theirs = {"param": param.copy(), "buf": np.zeros_like(param) if case["momentum"] else None}
    for step in range(4):
        grad = rng.normal(size=param.shape).astype(dtype)
        host_kernels.sgd_update(ours["param"], grad, ours["buf"], 0.05, first_step=step == 0,
                                **case)
        twin.sgd_update(theirs["param"], grad, theirs["buf"], 0.05, first_step=step == 0, **case)
        # A handful of roundings per step, on values of order |param| + lr·|d|.
        assert_agree(ours["param"], theirs["param"], 4 * (step + 1), 1.0, f"sgd param step {step}")
        if case["momentum"]:
            assert_agree(ours["buf"], theirs["buf"], 4 * (step + 1), 1.0, f"sgd buffer {step}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
def test_adam_steps_match_twin(host_kernels, decoupled, weight_decay, dtype):
    rng = np.random.default_rng(7)
    param = rng.normal(size=999).astype(dtype)
    ours = [param.copy(), np.zeros_like(param), np.zeros_like(param)]
    theirs = [param.copy(), np.zeros_like(param), np.zeros_like(param)]
    for step in range(1, 6):
        grad = rng.normal(size=param.shape).astype(dtype)
        grad[:3] = [0.0, 1e-30, 1e3]
        kwargs = dict(step=step, lr=1e-3, weight_decay=weight_decay, decoupled=decoupled)
        host_kernels.adam_update(*ours[:1], grad, *ours[1:], **kwargs)
        twin.adam_update(*theirs[:1], grad, *theirs[1:], **kwargs)
        for got, want, what in zip(ours, theirs, ["param", "exp_avg", "exp_avg_sq"]):
            assert_agree(got, want, 4 * step, 1.0 if what == "param" else 0.0,
                         f"adam {what} step {step}")


@pytest.mark.parametrize("launch", [(1, 1), (2, 3), (5, 7), (1, 1024)])
def test_grid_stride_loops_write_every_element_once(host_kernels, launch):
    # Odd launch shapes against odd sizes; NaN-prefilled outputs would show a skipped element.
    x = np.arange(-50, 51, dtype=np.float64)
    np.testing.assert_array_equal(host_kernels.act_forward("relu", x, launch=launch),
                                  np.maximum(x, 0))
    rows = np.arange(33 * 5, dtype=np.float64).reshape(33, 5)
    b = np.array([1.0, -1e3, 2.0, 0.5, -4.0])
    np.testing.assert_array_equal(host_kernels.bias_act_forward("relu", rows, b, launch=launch),
                                  np.maximum(rows + b, 0))
