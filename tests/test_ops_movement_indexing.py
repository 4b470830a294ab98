"""Movement and indexing ops against PyTorch (forward and gradient) where PyTorch's semantics are
the contract (pad's width order, Tensor.repeat, split, chunk, unfold, scatter_reduce), plus the
cases the op table's random rows cannot reach: repeated scatter targets, errors, naming.
"""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.errors import DTypeError, ShapeError

torch = pytest.importorskip("torch")
TF = torch.nn.functional
RNG = np.random.default_rng(0)
X34 = RNG.standard_normal((3, 4))
X234 = RNG.standard_normal((2, 3, 4))
IDX = np.array([[2, 0, 1, 2], [0, 0, 2, 1]])
SRC = RNG.standard_normal((2, 4))


def _torch_index(a):
    return torch.tensor(a)


# (name, gradflow function, torch function, input)
PAIRS = [
    ("pad_constant", lambda x: F.pad(x, (1, 2, 0, 1), value=-1.5), lambda x: TF.pad(x, (1, 2, 0, 1), value=-1.5), X34),
    ("pad_crop", lambda x: F.pad(x, (-1, 2, 1, -2)), lambda x: TF.pad(x, (-1, 2, 1, -2)), X34),
    ("pad_reflect", lambda x: F.pad(x, (3, 1, 1, 2), mode="reflect"), lambda x: TF.pad(x, (3, 1, 1, 2), mode="reflect"),
     X234),
    ("pad_replicate", lambda x: F.pad(x, (2, 5), mode="replicate"), lambda x: TF.pad(x, (2, 5), mode="replicate"), X234),
    ("pad_circular", lambda x: F.pad(x, (4, 1, 0, 3), mode="circular"),
     lambda x: TF.pad(x, (4, 1, 0, 3), mode="circular"), X234),
    ("flip", lambda x: x.flip(dims=(0, 2)), lambda x: x.flip((0, 2)), X234),
    ("roll", lambda x: gf.roll(x, (5, -1), dims=(2, 0)), lambda x: torch.roll(x, (5, -1), (2, 0)), X234),
    ("roll_flat", lambda x: gf.roll(x, -3), lambda x: torch.roll(x, -3), X34),
    ("repeat", lambda x: x.repeat(2, 1, 3), lambda x: x.repeat(2, 1, 3), X34),
    ("tile", lambda x: gf.tile(x, (2,)), lambda x: torch.tile(x, (2,)), X34),
    ("repeat_interleave", lambda x: x.repeat_interleave(3, dim=0), lambda x: x.repeat_interleave(3, dim=0), X34),
    ("repeat_interleave_flat", lambda x: gf.repeat_interleave(x, 2), lambda x: torch.repeat_interleave(x, 2), X34),
    ("repeat_interleave_counts", lambda x: x.repeat_interleave(gf.tensor([2, 0, 1, 3]), dim=1),
     lambda x: x.repeat_interleave(torch.tensor([2, 0, 1, 3]), dim=1), X34),
    ("split_size", lambda x: gf.cat([p * (i + 1.0) for i, p in enumerate(x.split(3, dim=2))], 2),
     lambda x: torch.cat([p * (i + 1.0) for i, p in enumerate(x.split(3, dim=2))], 2), X234),
    ("split_sizes", lambda x: x.split([1, 2], 1)[1], lambda x: x.split([1, 2], 1)[1], X234),
    ("chunk", lambda x: gf.cat([p * (i + 1.0) for i, p in enumerate(gf.chunk(x, 3, dim=2))], 2),
     lambda x: torch.cat([p * (i + 1.0) for i, p in enumerate(torch.chunk(x, 3, dim=2))], 2), X234),
    ("unbind", lambda x: x.unbind(2)[1] * x.unbind(2)[3], lambda x: x.unbind(2)[1] * x.unbind(2)[3], X234),
    ("tril", lambda x: x.tril(1), lambda x: x.tril(1), X234),
    ("triu", lambda x: gf.triu(x, -1), lambda x: torch.triu(x, -1), X34),
    ("diag", lambda x: gf.diag(gf.diag(x, 1), -2), lambda x: torch.diag(torch.diag(x, 1), -2), X34),
    ("diagonal", lambda x: x.diagonal(-1, dim1=2, dim2=1), lambda x: x.diagonal(-1, dim1=2, dim2=1), X234),
    ("trace", gf.trace, torch.trace, X34),
    ("unfold", lambda x: x.unfold(2, 2, 1), lambda x: x.unfold(2, 2, 1), X234),
    ("unfold_step", lambda x: x.unfold(0, 2, 2), lambda x: x.unfold(0, 2, 2), X34),
    ("movedim", lambda x: gf.movedim(x, 0, -1), lambda x: torch.movedim(x, 0, -1), X234),
    ("meshgrid_ij", lambda x: gf.meshgrid(x[0], x[1, :3], indexing="ij")[1] * gf.meshgrid(x[0], x[1, :3], indexing="ij")[0],
     lambda x: torch.meshgrid(x[0], x[1, :3], indexing="ij")[1] * torch.meshgrid(x[0], x[1, :3], indexing="ij")[0], X34),
    ("einsum_bilinear", lambda x: gf.einsum("bi,ij,bj->b", x[:, :3], x[:, 1:], x[:, :3]),
     lambda x: torch.einsum("bi,ij,bj->b", x[:, :3], x[:, 1:], x[:, :3]), X34[:3]),
    ("einsum_ellipsis", lambda x: gf.einsum("...ij->...ji", x), lambda x: torch.einsum("...ij->...ji", x), X234),
    ("gather", lambda x: x.gather(0, gf.tensor(IDX)), lambda x: x.gather(0, _torch_index(IDX)), X34),
    ("index_select", lambda x: x.index_select(2, gf.tensor([3, 3, 0])), lambda x: x.index_select(2, torch.tensor([3, 3, 0])),
     X234),
    ("scatter_add", lambda x: x.scatter_add(0, gf.tensor(IDX), x[:2] * 2.0),
     lambda x: x.scatter_add(0, _torch_index(IDX), x[:2] * 2.0), X34),
    ("take_along_dim", lambda x: x.take_along_dim(gf.tensor(IDX), 0), lambda x: x.take_along_dim(_torch_index(IDX), 0),
     X34),
    ("take_along_dim_flat", lambda x: gf.take_along_dim(x, gf.tensor([11, 0, 5])),
     lambda x: torch.take_along_dim(x, torch.tensor([11, 0, 5])), X34),
    ("masked_fill", lambda x: x.masked_fill(x > 0.3, -2.0), lambda x: x.masked_fill(x > 0.3, -2.0), X234),
    ("masked_select", lambda x: x.masked_select(x < 0), lambda x: x.masked_select(x < 0), X234),
    ("logsumexp", lambda x: x.logsumexp(dim=1, keepdim=True), lambda x: x.logsumexp(1, keepdim=True), X234),
    ("cumsum", lambda x: x.cumsum(dim=2), lambda x: x.cumsum(2), X234),
]
for _reduce in ("sum", "prod", "mean", "amax", "amin"):
    for _self in (True, False):
        PAIRS.append((f"scatter_reduce_{_reduce}_{_self}",
                      lambda x, r=_reduce, s=_self: x.scatter_reduce(0, gf.tensor(IDX), x[1:] * 1.5, r, include_self=s),
                      lambda x, r=_reduce, s=_self: x.scatter_reduce(0, _torch_index(IDX), x[1:] * 1.5, r,
                                                                     include_self=s), X34))


@pytest.mark.parametrize("name, ours, theirs, data", PAIRS, ids=[p[0] for p in PAIRS])
def test_matches_torch_forward_and_gradient(name, ours, theirs, data):
    x = gf.tensor(data, requires_grad=True)
    t = torch.tensor(data, requires_grad=True)
    out, expected = ours(x), theirs(t)
    assert out.shape == tuple(expected.shape)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    upstream = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(gf.tensor(upstream))
    expected.backward(torch.tensor(upstream))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_one_hot_matches_torch():
    labels = np.array([[0, 3], [2, 2]])
    np.testing.assert_array_equal(F.one_hot(gf.tensor(labels)).numpy(), TF.one_hot(torch.tensor(labels)).numpy())
    np.testing.assert_array_equal(gf.one_hot(gf.tensor(labels), num_classes=6).numpy(),
                                  TF.one_hot(torch.tensor(labels), num_classes=6).numpy())
    with pytest.raises(IndexError, match="num_classes=3"):
        gf.one_hot(gf.tensor(labels), 3)
    with pytest.raises(DTypeError):
        gf.one_hot(gf.tensor([0.0, 1.0]))


def test_nonzero_matches_torch():
    data = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])
    np.testing.assert_array_equal(gf.nonzero(gf.tensor(data)).numpy(), torch.nonzero(torch.tensor(data)).numpy())
    for ours, theirs in zip(gf.tensor(data).nonzero(as_tuple=True), torch.tensor(data).nonzero(as_tuple=True)):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_scatter_with_repeated_targets_writes_and_differentiates_the_last_entry():
    x = gf.tensor(np.zeros(3), requires_grad=True)
    src = gf.tensor(np.array([1.0, 2.0, 3.0, 4.0]), requires_grad=True)
    out = gf.scatter(x, 0, gf.tensor([2, 0, 2, 2]), src)
    np.testing.assert_allclose(out.numpy(), [2.0, 0.0, 4.0])
    out.backward(gf.tensor(np.array([10.0, 20.0, 30.0])))
    np.testing.assert_allclose(src.grad.numpy(), [0.0, 10.0, 0.0, 30.0])
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 20.0, 0.0])


def test_scatter_reduce_amax_shares_the_gradient_among_ties_like_torch():
    data, src_data = np.array([1.0, 5.0, 0.0]), np.array([5.0, 5.0, -1.0])
    index = np.array([1, 1, 0])
    x, src = gf.tensor(data, requires_grad=True), gf.tensor(src_data, requires_grad=True)
    t, tsrc = torch.tensor(data, requires_grad=True), torch.tensor(src_data, requires_grad=True)
    gf.scatter_reduce(x, 0, gf.tensor(index), src, "amax").sum().backward()
    t.scatter_reduce(0, torch.tensor(index), tsrc, "amax").sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy())
    np.testing.assert_allclose(src.grad.numpy(), tsrc.grad.numpy())


def test_repeat_names_follow_their_libraries():
    x = gf.tensor([1.0, 2.0])
    assert x.repeat(2).tolist() == [1.0, 2.0, 1.0, 2.0]          # PyTorch's Tensor.repeat: tile
    assert gf.repeat(x, 2).tolist() == [1.0, 1.0, 2.0, 2.0]      # NumPy's repeat: interleave
    assert gf.tile(x, 2).tolist() == x.repeat(2).tolist()
    with pytest.raises(ShapeError, match="at least 2"):
        gf.tensor(np.ones((2, 2))).repeat(3)


def test_errors_name_shapes_and_axes():
    x = gf.tensor(X34)
    with pytest.raises(IndexError, match="out of bounds.*size 4"):
        gf.gather(x, 1, gf.tensor([[4]]))
    with pytest.raises(ShapeError, match=r"larger than the input of shape \(3, 4\)"):
        gf.gather(x, 0, gf.tensor(np.zeros((3, 5), np.int64)))
    with pytest.raises(DTypeError, match="integer"):
        gf.index_select(x, 0, gf.tensor([0.0]))
    with pytest.raises(ShapeError, match="axis 2 is out of range"):
        gf.index_select(x, 2, gf.tensor([0]))
    with pytest.raises(ShapeError, match="reflect"):
        F.pad(x, (4, 0), mode="reflect")
    with pytest.raises(ShapeError, match="even number"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ShapeError, match="sizes 4 and 3"):
        gf.einsum("ij,ij->i", x, gf.tensor(np.ones((3, 3))))
    with pytest.raises(ShapeError, match="do not add up"):
        gf.split(x, [1, 1], dim=0)
    with pytest.raises(DTypeError, match="bool"):
        gf.masked_fill(x, gf.tensor([1, 0, 1, 0]), 0.0)


def test_pad_accepts_numpy_mode_names():
    x = gf.tensor(X34)
    np.testing.assert_array_equal(gf.pad(x, (1, 1), mode="edge").numpy(), gf.pad(x, (1, 1), mode="replicate").numpy())
    np.testing.assert_array_equal(gf.pad(x, (1, 1), mode="wrap").numpy(), np.pad(X34, ((0, 0), (1, 1)), "wrap"))


def test_einsum_implicit_output_and_list_operands_follow_numpy():
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 2))
    np.testing.assert_allclose(gf.einsum("ij,jk", [gf.tensor(a), gf.tensor(b)]).numpy(), np.einsum("ij,jk", a, b))
    np.testing.assert_allclose(gf.einsum("ba", gf.tensor(a)).numpy(), np.einsum("ba", a))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_modes_match_torch_for_every_allowed_width(mode):
    for n in (2, 4):
        limit = {"reflect": n - 1, "circular": n, "replicate": n + 1}[mode]
        data = RNG.standard_normal((2, n))
        for before in range(limit + 1):
            for after in range(limit + 1):
                x, t = gf.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
                out, expected = F.pad(x, (before, after), mode=mode), TF.pad(t, (before, after), mode=mode)
                np.testing.assert_array_equal(out.numpy(), expected.detach().numpy())
                upstream = np.arange(out.numel(), dtype=np.float64).reshape(out.shape)
                out.backward(gf.tensor(upstream))
                expected.backward(torch.tensor(upstream))
                np.testing.assert_array_equal(x.grad.numpy(), t.grad.numpy())


@pytest.mark.parametrize("sections", [1, 3, 4, 7, [1, 3], [-2], [3, 1], [0, 5, 9], []], ids=str)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_array_split_follows_numpy_and_tensor_split_follows_pytorch(sections, axis):
    x = np.arange(24.0).reshape(2, 3, 4)
    got = gf.array_split(gf.tensor(x), sections, axis=axis)
    want = np.array_split(x, sections, axis=axis)
    assert [p.shape for p in got] == [p.shape for p in want]
    for piece, expected in zip(got, want):
        np.testing.assert_array_equal(piece.numpy(), expected)
    torch = pytest.importorskip("torch")
    pieces = gf.tensor(x).tensor_split(sections, dim=axis)
    assert isinstance(pieces, tuple)
    expected = torch.tensor_split(torch.tensor(x), sections, dim=axis)
    assert [tuple(p.shape) for p in pieces] == [tuple(p.shape) for p in expected]


@pytest.mark.parametrize("name, sections", [("hsplit", 2), ("hsplit", [1]), ("vsplit", 2), ("vsplit", [1, 5]),
                                            ("dsplit", 3), ("dsplit", [2])])
@pytest.mark.parametrize("shape", [(4, 6, 3), (2, 6), (6,)], ids=str)
def test_hsplit_vsplit_dsplit_follow_numpy(name, sections, shape):
    x = np.arange(float(np.prod(shape))).reshape(shape)
    try:
        want = getattr(np, name)(x, sections)
    except ValueError:  # too few axes or an unequal division: gradflow raises ShapeError, a ValueError
        with pytest.raises(ShapeError):
            getattr(gf, name)(gf.tensor(x), sections)
        return
    got = getattr(gf.tensor(x), name)(sections)
    assert len(got) == len(want)
    for piece, expected in zip(got, want):
        np.testing.assert_array_equal(piece.numpy(), expected)


def test_array_split_errors_and_gradient_of_uneven_pieces():
    x = gf.tensor(np.arange(5.0), requires_grad=True)
    with pytest.raises(ShapeError, match="positive"):
        gf.array_split(x, 0)
    with pytest.raises(ShapeError, match="divide"):
        gf.hsplit(x, 2)
    with pytest.raises(ShapeError, match="0-d"):
        gf.hsplit(gf.tensor(1.0), 1)
    a, b, c = gf.array_split(x, 3)
    (a.sum() + 2 * b.sum() + 3 * c.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 2.0, 2.0, 3.0])
