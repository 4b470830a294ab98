"""Sampling: the global generator and passed ``gradflow.Generator``s (reproducible, independent),
and normal/uniform/bernoulli's shapes, dtypes and distributions (moments within 5 standard errors
on large seeded samples, so these are deterministic, not flaky)."""
import numpy as np
import pytest

import gradflow as gf

N = 200_000


def test_a_seed_repeats_the_stream_and_generators_are_independent():
    gf.manual_seed(7)
    first = gf.randn(5).numpy()
    gf.manual_seed(7)
    g = gf.Generator().manual_seed(123)
    gf.randn(3, generator=g)                      # drawing from g leaves the global stream alone
    np.testing.assert_array_equal(gf.randn(5).numpy(), first)
    a = gf.rand(4, generator=gf.Generator().manual_seed(1)).numpy()
    b = gf.rand(4, generator=gf.Generator().manual_seed(1)).numpy()
    np.testing.assert_array_equal(a, b)
    assert gf.initial_seed() == 7 and g.initial_seed() == 123


def test_a_fresh_generator_is_reproducible_and_state_round_trips():
    np.testing.assert_array_equal(gf.randn(3, generator=gf.Generator()).numpy(),
                                  gf.randn(3, generator=gf.Generator()).numpy())
    g = gf.Generator().manual_seed(5)
    state = g.get_state()
    x = gf.uniform(size=(6,), generator=g).numpy()
    g.set_state(state)
    np.testing.assert_array_equal(gf.uniform(size=(6,), generator=g).numpy(), x)
    state = gf.get_rng_state()
    y = gf.rand(3).numpy()
    gf.set_rng_state(state)
    np.testing.assert_array_equal(gf.rand(3).numpy(), y)
    assert isinstance(g.seed(), int)


@pytest.mark.parametrize("sample", [
    lambda g: gf.randn(2, 3, generator=g), lambda g: gf.rand((2, 3), generator=g),
    lambda g: gf.randint(0, 10, (2, 3), generator=g), lambda g: gf.randn_like(gf.zeros(2, 3), generator=g),
    lambda g: gf.rand_like(gf.zeros(2, 3), generator=g), lambda g: gf.normal(1.0, 2.0, (2, 3), generator=g),
    lambda g: gf.uniform(-1.0, 1.0, (2, 3), generator=g), lambda g: gf.bernoulli(gf.full((2, 3), 0.5), generator=g),
], ids=["randn", "rand", "randint", "randn_like", "rand_like", "normal", "uniform", "bernoulli"])
def test_every_sampler_takes_a_generator(sample):
    a = sample(gf.Generator().manual_seed(11))
    b = sample(gf.Generator().manual_seed(11))
    assert a.shape == (2, 3)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), sample(gf.Generator().manual_seed(12)).numpy())


def _within(values, mean, std):
    """The sample mean is within 5 standard errors of ``mean``."""
    assert abs(values.mean() - mean) < 5 * std / np.sqrt(values.size)


def test_normal_moments_and_tensor_parameters():
    g = gf.Generator().manual_seed(0)
    x = gf.normal(3.0, 2.0, size=(N,), generator=g, dtype="float64").numpy()
    _within(x, 3.0, 2.0)
    assert abs(x.std() - 2.0) < 0.02
    mean = gf.tensor([[-5.0], [5.0]], dtype="float64")
    y = gf.normal(mean, gf.tensor([0.1, 1.0, 3.0], dtype="float64"), generator=g)
    assert y.shape == (2, 3) and y.dtype == np.float64 and not y.requires_grad
    z = gf.normal(mean, 0.5, size=(N // 100, 2, 1), generator=g).numpy()
    _within(z[:, 0], -5.0, 0.5)
    _within(z[:, 1], 5.0, 0.5)
    assert gf.normal(size=(2,)).dtype == gf.get_default_dtype()


def test_uniform_bounds_and_moments():
    u = gf.uniform(-2.0, 6.0, size=(N,), generator=gf.Generator().manual_seed(1), dtype="float64").numpy()
    assert u.min() >= -2.0 and u.max() < 6.0
    _within(u, 2.0, 8 / np.sqrt(12))
    low = gf.tensor([0.0, 10.0])
    v = gf.uniform(low, low + 1.0, size=(1000, 2)).numpy()
    assert (v[:, 0] < 1).all() and (v[:, 1] >= 10).all() and v.dtype == np.float32


def test_bernoulli_frequencies():
    probs = gf.tensor(np.tile([0.0, 0.2, 0.9, 1.0], N // 4).reshape(-1, 4), dtype="float64")
    draws = gf.bernoulli(probs, generator=gf.Generator().manual_seed(2)).numpy()
    assert draws.dtype == np.float64 and set(np.unique(draws)) <= {0.0, 1.0}
    assert draws[:, 0].sum() == 0 and draws[:, 3].all()
    _within(draws[:, 1], 0.2, np.sqrt(0.2 * 0.8))
    _within(draws[:, 2], 0.9, np.sqrt(0.9 * 0.1))
    fixed = gf.bernoulli(gf.zeros(N), p=0.3).numpy()
    _within(fixed, 0.3, np.sqrt(0.3 * 0.7))


def test_sampler_errors():
    with pytest.raises(gf.ShapeError, match=r"size \(4,\) does not fit parameters of shape \(3,\)"):
        gf.normal(gf.zeros(3), 1.0, size=(4,))
    with pytest.raises(TypeError, match="gradflow.Generator"):
        gf.randn(2, generator=np.random.default_rng(0))
    with pytest.raises(ValueError, match="non-negative"):
        gf.Generator().manual_seed(-1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gf.bernoulli(gf.zeros(2), p=1.5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_in_place_samplers_fill_the_tensor_and_its_views(dtype):
    x = gf.zeros(N, dtype=dtype)
    view = x.reshape(2, -1)
    assert x.normal_(3.0, 2.0, generator=gf.Generator().manual_seed(0)) is x
    values = x.numpy()
    assert values.dtype == np.dtype(dtype)
    _within(values, 3.0, 2.0)
    assert abs(values.std() - 2.0) < 0.02
    np.testing.assert_array_equal(view.numpy().ravel(), values)  # written into the array itself
    x.uniform_(-2.0, 6.0, generator=gf.Generator().manual_seed(1))
    u = x.numpy()
    assert u.min() >= -2.0 and u.max() < 6.0
    _within(u, 2.0, 8 / np.sqrt(12))
    x.bernoulli_(0.3)
    assert set(np.unique(x.numpy())) <= {0.0, 1.0}
    _within(x.numpy(), 0.3, np.sqrt(0.3 * 0.7))


def test_in_place_samplers_take_a_generator_and_match_the_out_of_place_draw():
    # The same host draw as nn.init: a seed gives the same numbers on every device and dtype.
    a = gf.empty(3, 4).normal_(generator=gf.Generator().manual_seed(5))
    b = gf.empty(3, 4, dtype="float64").normal_(generator=gf.Generator().manual_seed(5))
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    # A Generator seeded with n is NumPy's default_rng(n) (random.py): the float64 fill is its draw.
    np.testing.assert_array_equal(b.numpy(), np.random.default_rng(5).normal(0.0, 1.0, (3, 4)))
    gf.manual_seed(9)
    c = gf.empty(5).uniform_()
    gf.manual_seed(9)
    np.testing.assert_array_equal(gf.empty(5).uniform_().numpy(), c.numpy())


def test_bernoulli_in_place_with_tensor_probabilities_and_integer_tensors():
    probs = gf.tensor(np.tile([0.0, 0.2, 0.9, 1.0], N // 4).reshape(-1, 4), dtype="float64")
    draws = gf.zeros(N // 4, 4, dtype="int64").bernoulli_(probs, generator=gf.Generator().manual_seed(2))
    d = draws.numpy()
    assert d.dtype == np.int64 and set(np.unique(d)) <= {0, 1}
    assert d[:, 0].sum() == 0 and d[:, 3].all()
    _within(d[:, 1], 0.2, np.sqrt(0.2 * 0.8))
    row = gf.zeros(1000, 2).bernoulli_(gf.tensor([0.0, 1.0]))  # broadcast probabilities
    np.testing.assert_array_equal(row.numpy(), np.tile([0.0, 1.0], (1000, 1)))


def test_in_place_sampler_errors():
    with pytest.raises(ValueError, match="std >= 0"):
        gf.zeros(3).normal_(0.0, -1.0)
    with pytest.raises(ValueError, match="a <= b"):
        gf.zeros(3).uniform_(2.0, 1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gf.zeros(3).bernoulli_(1.5)
    with pytest.raises(gf.DTypeError, match="int64"):
        gf.zeros(3, dtype="int64").normal_()
    with pytest.raises(gf.ShapeError, match=r"\(4,\).*\(3,\)"):
        gf.zeros(3).bernoulli_(gf.full((4,), 0.5))
    w = gf.zeros(3, requires_grad=True)
    with pytest.raises(gf.BackwardError, match="no_grad"):
        w.uniform_()
    with gf.no_grad():
        w.uniform_(1.0, 2.0)  # as nn.init writes parameters
    assert (w.numpy() >= 1.0).all() and w.requires_grad


def test_in_place_samplers_count_as_writes_where_tensors_keep_a_version():
    x = gf.zeros(4)
    before = getattr(x, "_version", None)
    x.normal_()
    if before is None:
        pytest.skip("this tree's autograd keeps no version counters")
    assert x._version == before + 1
