"""Each CNN module loads a PyTorch state_dict (written to a .npz file by the test, read back as
NumPy arrays) and reproduces PyTorch's outputs, input gradients and parameter gradients, in
float64. Skipped where torch is not installed."""
import numpy as np
import pytest

import gradflow as gf
from gradflow.models import build

torch = pytest.importorskip("torch")
TOLERANCE = dict(rtol=1e-10, atol=1e-12)

CASES = [
    ("Conv1d", lambda m: m.Conv1d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2), (2, 4, 9)),
    ("Conv2d", lambda m: m.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 5)),
    ("Conv2d_strided_dilated_grouped",
     lambda m: m.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2, bias=False),
     (2, 4, 7, 6)),
    ("ConvTranspose2d", lambda m: m.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
     (2, 4, 3, 4)),
    ("ConvTranspose2d_dilated", lambda m: m.ConvTranspose2d(3, 2, (2, 3), stride=(1, 2), dilation=2), (1, 3, 4, 3)),
    ("MaxPool2d", lambda m: m.MaxPool2d(3, stride=2, padding=1), (2, 3, 7, 6)),
    ("AvgPool2d", lambda m: m.AvgPool2d(2), (2, 3, 6, 6)),
    ("AvgPool2d_padded", lambda m: m.AvgPool2d(3, stride=2, padding=1), (2, 3, 7, 6)),
    ("AvgPool2d_real_cells_only", lambda m: m.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 7, 6)),
    ("AvgPool2d_divisor_override", lambda m: m.AvgPool2d(2, padding=1, divisor_override=3), (1, 2, 5, 5)),
    ("MaxPool2d_ceil_dilated", lambda m: m.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True), (2, 3, 8, 7)),
    ("MaxPool2d_unbatched_ceil", lambda m: m.MaxPool2d((2, 3), stride=(2, 2), ceil_mode=True), (3, 5, 6)),
    ("AvgPool2d_ceil", lambda m: m.AvgPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 6, 5)),
    ("AvgPool2d_ceil_real_cells", lambda m: m.AvgPool2d((2, 3), stride=2, ceil_mode=True, count_include_pad=False),
     (1, 2, 5, 5)),
    ("AvgPool2d_ceil_divisor_override", lambda m: m.AvgPool2d(2, ceil_mode=True, divisor_override=3), (1, 2, 5, 5)),
    ("MaxPool1d", lambda m: m.MaxPool1d(3, stride=2, padding=1, dilation=2, ceil_mode=True), (2, 3, 8)),
    ("AvgPool1d", lambda m: m.AvgPool1d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False), (2, 3, 8)),
    ("AvgPool1d_unbatched", lambda m: m.AvgPool1d(2), (3, 7)),
    ("AdaptiveAvgPool2d", lambda m: m.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5)),
    ("Upsample_nearest", lambda m: m.Upsample(scale_factor=(2, 1.5)), (2, 3, 3, 4)),
    ("Upsample_nearest_exact", lambda m: m.Upsample(size=(5, 7), mode="nearest-exact"), (1, 2, 3, 4)),
    ("Upsample_bilinear_align_corners", lambda m: m.Upsample(size=(5, 7), mode="bilinear", align_corners=True),
     (2, 2, 3, 4)),
    ("Upsample_linear", lambda m: m.Upsample(scale_factor=2.5, mode="linear"), (2, 3, 4)),
    ("Upsample_linear_align_corners", lambda m: m.Upsample(size=9, mode="linear", align_corners=True), (2, 3, 4)),
    ("UpsamplingBilinear2d", lambda m: m.UpsamplingBilinear2d(scale_factor=2), (1, 2, 3, 3)),
    ("UpsamplingNearest2d", lambda m: m.UpsamplingNearest2d(size=(4, 5)), (1, 2, 3, 3)),
    ("BatchNorm1d", lambda m: m.BatchNorm1d(5), (8, 5)),
    ("BatchNorm1d_sequence", lambda m: m.BatchNorm1d(3, momentum=0.3), (4, 3, 6)),
    ("BatchNorm2d", lambda m: m.BatchNorm2d(3, eps=1e-3), (4, 3, 5, 5)),
    ("GroupNorm", lambda m: m.GroupNorm(2, 4), (3, 4, 5, 2)),
    ("Flatten", lambda m: m.Flatten(), (2, 3, 4, 2)),
    ("Dropout", lambda m: m.Dropout(0.5), (3, 4)),
]


def _torch_state(module, tmp_path):
    """The module's state_dict as NumPy arrays, through a file as a user would move it."""
    path = tmp_path / "state.npz"
    np.savez(path, **{k: v.detach().numpy() for k, v in module.state_dict().items()})
    with np.load(path) as arrays:
        return {k: arrays[k] for k in arrays.files}


def _randomize(module, seed):
    # Non-default parameters and statistics, so that loading them matters.
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=generator, dtype=b.dtype))
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=generator, dtype=b.dtype) + 0.5)


def _compare(torch_module, gf_module, x, train):
    torch_module.train(train)
    gf_module.train(train)
    tx = torch.tensor(x, requires_grad=True)
    gx = gf.tensor(x, requires_grad=True)
    ty, gy = torch_module(tx), gf_module(gx)
    np.testing.assert_allclose(gy.numpy(), ty.detach().numpy(), **TOLERANCE)
    u = np.random.default_rng(1).standard_normal(ty.shape)
    ty.backward(torch.tensor(u))
    gy.backward(gf.tensor(u))
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), **TOLERANCE)
    torch_params = dict(torch_module.named_parameters())
    for name, p in gf_module.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), torch_params[name].grad.numpy(), **TOLERANCE, err_msg=name)
    torch_state = torch_module.state_dict()
    for name, value in gf_module.state_dict().items():  # running statistics after the step
        np.testing.assert_allclose(value.numpy(), torch_state[name].numpy(), **TOLERANCE, err_msg=name)


@pytest.mark.parametrize("name, make, shape", CASES, ids=[c[0] for c in CASES])
def test_module_reproduces_pytorch_from_its_state_dict(name, make, shape, tmp_path):
    torch.manual_seed(0)
    torch_module = make(torch.nn).double()
    _randomize(torch_module, seed=1)
    gf_module = make(gf.nn).to(gf.float64)
    state = _torch_state(torch_module, tmp_path)
    assert list(state) == list(gf_module.state_dict())  # same names, same order
    gf_module.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal(shape)
    modes = (True, False) if name.startswith("BatchNorm") or name == "Dropout" else (True,)
    for train in modes:
        if name == "Dropout" and train:
            continue  # random masks differ between frameworks; eval mode is the identity in both
        torch_module.zero_grad()
        gf_module.zero_grad()
        _compare(torch_module, gf_module, x, train)


def test_cnn_model_loads_the_equivalent_pytorch_network(tmp_path):
    """gradflow's CNN builder and the same nn.Sequential in PyTorch share state_dict keys and outputs."""
    tnn = torch.nn
    torch.manual_seed(0)
    reference = tnn.Sequential(
        tnn.Unflatten(1, (1, 8, 8)),
        tnn.Conv2d(1, 16, 3, padding=1, bias=False), tnn.BatchNorm2d(16), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(16, 32, 3, padding=1, bias=False), tnn.BatchNorm2d(32), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(128, 10)).double()
    _randomize(reference, seed=2)
    model = build("cnn", dtype=gf.float64)
    model.load_state_dict(_torch_state(reference, tmp_path))
    x = np.random.default_rng(3).standard_normal((6, 64))
    for train in (True, False):
        reference.zero_grad()
        model.zero_grad()
        _compare(reference, model, x, train)


def test_default_initialization_follows_pytorch_bounds():
    """Conv weights U(±1/√fan_in) (kaiming_uniform with a=√5), as PyTorch draws them."""
    conv, transposed = gf.nn.Conv2d(4, 8, 3, groups=2), gf.nn.ConvTranspose2d(4, 6, 3)
    for module, fan_in in ((conv, 2 * 9), (transposed, 6 * 9)):
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(module.weight.numpy()).max() <= bound
        assert np.abs(module.weight.numpy()).max() > 0.8 * bound
        assert np.abs(module.bias.numpy()).max() <= bound


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("module, shape", [("Conv1d", (2, 3, 9)), ("Conv2d", (2, 3, 7, 6))])
def test_named_padding_matches_pytorch(module, shape, padding, tmp_path):
    torch.manual_seed(0)
    torch_module = getattr(torch.nn, module)(3, 4, 3, padding=padding, dilation=2).double()
    gf_module = getattr(gf.nn, module)(3, 4, 3, padding=padding, dilation=2).to(gf.float64)
    gf_module.load_state_dict(_torch_state(torch_module, tmp_path))
    _compare(torch_module, gf_module, np.random.default_rng(0).standard_normal(shape), train=True)


def test_same_padding_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="needs stride 1"):
        gf.nn.functional.conv2d(gf.ones(1, 1, 5, 5), gf.ones(1, 1, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match="uneven padding"):
        gf.nn.functional.conv2d(gf.ones(1, 1, 5, 5), gf.ones(1, 1, 2, 2), padding="same")


@pytest.mark.parametrize("dims, shape, options", [
    (2, (2, 3, 6, 7), dict(kernel_size=2)),
    (2, (2, 3, 7, 7), dict(kernel_size=3, stride=3, padding=1)),
    (2, (3, 5, 5), dict(kernel_size=(2, 3), stride=(2, 3))),                      # unbatched
    (1, (2, 3, 9), dict(kernel_size=3, stride=3, padding=1)),
], ids=["2x2", "3x3_padded", "unbatched_rectangular", "1d"])
def test_max_pool_indices_and_unpool_match_pytorch(dims, shape, options):
    """return_indices gives PyTorch's flat indices; MaxUnpool puts the maxima back where PyTorch does,
    and the gradients through pool and unpool match (windows that do not overlap: no repeated index)."""
    pool, unpool = f"MaxPool{dims}d", f"MaxUnpool{dims}d"
    x = np.random.default_rng(4).standard_normal(shape)
    tx, gx = torch.tensor(x, requires_grad=True), gf.tensor(x, requires_grad=True)
    t_out, t_index = getattr(torch.nn, pool)(**options, return_indices=True)(tx)
    g_out, g_index = getattr(gf.nn, pool)(**options, return_indices=True)(gx)
    np.testing.assert_array_equal(g_index.numpy(), t_index.numpy())
    assert g_index.dtype == gf.int64
    size = shape[-dims:]
    t_back = getattr(torch.nn, unpool)(**options)(t_out, t_index, output_size=size)
    g_back = getattr(gf.nn, unpool)(**options)(g_out, g_index, output_size=size)
    np.testing.assert_allclose(g_back.numpy(), t_back.detach().numpy(), **TOLERANCE)
    u = np.random.default_rng(5).standard_normal(shape)
    (t_back * torch.tensor(u)).sum().backward()
    (g_back * gf.tensor(u)).sum().backward()
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), **TOLERANCE)


def test_return_indices_without_a_graph_and_with_one_agree():
    x = gf.randn(2, 3, 7, 5)
    with gf.no_grad():
        plain = gf.nn.functional.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)[1]
    recorded = gf.nn.functional.max_pool2d(x.requires_grad_(), 3, 2, 1, ceil_mode=True, return_indices=True)[1]
    np.testing.assert_array_equal(plain.numpy(), recorded.numpy())


def test_pooling_errors_name_the_arguments():
    F = gf.nn.functional
    with pytest.raises(gf.errors.ShapeError, match=r"\(N, C, H, W\) or \(C, H, W\).*\(4, 4\)"):
        F.max_pool2d(gf.randn(4, 4), 2)
    with pytest.raises(gf.errors.ShapeError, match=r"\(N, C, L\) or \(C, L\).*\(1, 2, 3, 4\)"):
        F.avg_pool1d(gf.randn(1, 2, 3, 4), 2)
    with pytest.raises(ValueError, match="dilation"):
        F.max_pool2d(gf.randn(1, 1, 4, 4), 2, dilation=0)
    with pytest.raises(gf.errors.ShapeError, match=r"indices of shape \(1, 1, 2, 3\) must match the input \(1, 1, 2, 2\)"):
        F.max_unpool2d(gf.randn(1, 1, 2, 2), gf.zeros(1, 1, 2, 3, dtype="int64"), 2)
    with pytest.raises(IndexError, match=r"\[0, 16\].*\(4, 4\) has 16 positions"):
        F.max_unpool2d(gf.randn(1, 1, 2, 2), gf.tensor([[[[0, 1], [2, 16]]]]), 2)
    with pytest.raises(gf.errors.ShapeError, match=r"output_size \(9, 4\).*default \(4, 4\)"):
        F.max_unpool2d(gf.randn(1, 1, 2, 2), gf.zeros(1, 1, 2, 2, dtype="int64"), 2, output_size=(9, 4))
    with pytest.raises(gf.errors.DTypeError, match="integers"):
        F.max_unpool2d(gf.randn(1, 1, 2, 2), gf.zeros(1, 1, 2, 2), 2)


def test_interpolate_errors_name_the_mode_and_shape():
    F = gf.nn.functional
    with pytest.raises(gf.errors.ShapeError, match=r"'bilinear' takes \(N, C, H, W\).*\(2, 3, 4\)"):
        F.interpolate(gf.randn(2, 3, 4), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners applies to the linear modes only"):
        F.interpolate(gf.randn(1, 1, 2, 2), scale_factor=2, align_corners=True)
    with pytest.raises(ValueError, match="'bicubic'"):
        F.interpolate(gf.randn(1, 1, 2, 2), scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match=r"size \(3, 4\) must give 1 value"):
        F.interpolate(gf.randn(1, 1, 2), size=(3, 4), mode="linear")
