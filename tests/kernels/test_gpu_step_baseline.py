"""The benchmark's hand-written step must compute what gradflow's step computes, or its ratio
means nothing. Its code takes the array module as an argument, so NumPy checks it here."""
import numpy as np

import gradflow as gf
import gradflow.nn.functional as F
import gradflow.optim
from benchmarks.gpu_step import cupy_step, make_data


def test_hand_written_step_matches_gradflow():
    x, y, params = make_data(16, "float64")
    buffers = [np.zeros_like(p) for p in params]
    gf_params = [gf.nn.Parameter(gf.tensor(p.copy())) for p in params]
    optimizer = gradflow.optim.SGD(gf_params, lr=0.05, momentum=0.9)
    for _ in range(3):
        loss = cupy_step(np, x, y, params, buffers)
        optimizer.zero_grad()
        W1, b1, W2, b2 = gf_params
        gf_loss = F.cross_entropy(F.linear(F.relu(F.linear(gf.tensor(x), W1, b1)), W2, b2),
                                  gf.tensor(y))
        gf_loss.backward()
        optimizer.step()
        np.testing.assert_allclose(gf_loss.item(), loss, rtol=1e-12)
    for ours, theirs in zip(gf_params, params):
        np.testing.assert_allclose(np.asarray(ours.data), theirs, rtol=1e-12, atol=1e-14)
