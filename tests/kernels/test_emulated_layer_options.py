"""The pooling and transformer options of issue 14's follow-up on device "cuda" over the emulated CuPy:
ceil-mode pools with their indices and unpooling, align_corners resizing, and a decoder stack with
kdim/vdim, add_bias_kv and add_zero_attn attention in the (L, N, E) layout give the CPU's values and
gradients."""
import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F


@pytest.fixture(autouse=True)
def cuda(emulated_cuda):
    return emulated_cuda


def _agree(run):
    for got, want in zip(run("cuda"), run("cpu")):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_pooling_indices_unpooling_and_resizing_on_emulated_cuda_match_cpu():
    def run(device):
        x = gf.tensor(np.random.default_rng(0).standard_normal((2, 3, 7, 6)), device=device, requires_grad=True)
        out, indices = F.max_pool2d(x, 3, 2, 1, ceil_mode=True, return_indices=True)
        back = F.max_unpool2d(F.max_pool2d(x, 2, return_indices=True)[0],
                              F.max_pool2d(x, 2, return_indices=True)[1], 2, output_size=(7, 6))
        mean = F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
        wide = F.interpolate(x, size=(9, 4), mode="bilinear", align_corners=True)
        line = F.interpolate(x[:, :, 0], scale_factor=1.5, mode="linear")
        total = out.sum() + (back * back).sum() + mean.sum() + (wide * wide).sum() + line.sum()
        total.backward()
        assert indices.device == device
        return out.numpy(), indices.numpy(), back.numpy(), mean.numpy(), wide.numpy(), x.grad.numpy()

    _agree(run)


def test_decoder_stack_and_attention_options_on_emulated_cuda_match_cpu():
    def run(device):
        gf.manual_seed(0)
        decoder = gf.nn.TransformerDecoder(gf.nn.TransformerDecoderLayer(8, 2, 12, dropout=0.0, batch_first=False,
                                                                         dtype="float64"), 2).to(device)
        attention = gf.nn.MultiheadAttention(8, 2, kdim=6, vdim=4, add_bias_kv=True, add_zero_attn=True,
                                             batch_first=False, dtype="float64").to(device)
        rng = np.random.default_rng(1)
        tgt = gf.tensor(rng.standard_normal((4, 2, 8)), device=device, requires_grad=True)
        memory = gf.tensor(rng.standard_normal((5, 2, 8)), device=device)
        keys, values = (gf.tensor(rng.standard_normal((5, 2, d)), device=device) for d in (6, 4))
        padding = gf.tensor(np.array([[False] * 5, [False, False, False, True, True]]), device=device)
        mask = gf.nn.Transformer.generate_square_subsequent_mask(4, device=device, dtype="float64")
        out = decoder(tgt, memory, tgt_mask=mask, memory_key_padding_mask=padding)
        attended, weights = attention(out, keys, values, key_padding_mask=padding)
        (attended.sum() + weights.sum()).backward()
        return attended.numpy(), tgt.grad.numpy(), attention.k_proj_weight.grad.numpy()

    _agree(run)
