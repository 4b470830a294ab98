"""Adam(capturable=True): the step number lives in a device counter the multi-tensor kernel reads
(kernels/optimizers.cu, the note [capturable Adam] in gradflow/optim/adam.py), so every step
launches the same kernels with the same by-value arguments — what a captured CUDA graph replays.
Checked on the CPU (the twin reads the counter) and on the emulated CuPy (the real kernel)."""
import numpy as np
import pytest

import emulated_cupy
import gradflow as gf
from benchmarks.gpu_step import count_step, describe_events, gradflow_step, make_data


def _train(device, capturable, steps=4, decoupled=False):
    x, y, params = make_data(16, "float32")
    gx, gy = gf.tensor(x, device=device), gf.tensor(y, device=device)
    ps = [gf.nn.Parameter(gf.tensor(p, device=device)) for p in params]
    kind = gf.optim.AdamW if decoupled else gf.optim.Adam
    optimizer = kind(ps, lr=1e-2, capturable=capturable)
    for _ in range(steps):
        gradflow_step(gf, gx, gy, ps, optimizer, True)
    return [p.numpy() for p in ps], optimizer


@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
def test_capturable_adam_matches_eager_on_the_cpu(decoupled):
    eager, _ = _train("cpu", False, decoupled=decoupled)
    captured, optimizer = _train("cpu", True, decoupled=decoupled)
    for a, b in zip(eager, captured):
        np.testing.assert_array_equal(a, b)
    (counter,) = optimizer._step_counts.values()
    assert counter.tolist() == [4]


def test_capturable_adam_matches_eager_on_the_emulated_device(emulated_cuda):
    eager, _ = _train("cuda", False)
    captured, optimizer = _train("cuda", True)
    for a, b in zip(eager, captured):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)  # device pow vs host ** (an ulp)
    (counter,) = optimizer._step_counts.values()
    assert type(counter).__module__ == "cupy" and counter.dtype == np.int64


def test_capturable_steps_repeat_the_same_launches_and_arguments(emulated_cuda, monkeypatch):
    """Steps 2, 3 and 4 launch the same kernels; the multi-tensor kernel's by-value arguments are
    the same bytes each time and its step counter the same device address (eager Adam's
    step_size differs every step: a graph captured at step 2 would replay step 2's forever)."""
    recorded = []
    pack = emulated_cupy.pack_arguments

    def recording(name, parameters, args):
        if "adam_multi_tensor" in name:
            values = tuple(bytes(np.array(a)) for a, p in zip(args, parameters) if not p.pointer)
            counter = args[-4]
            recorded.append((values, int(counter.ctypes.data) if hasattr(counter, "ctypes") else 0))
        return pack(name, parameters, args)

    monkeypatch.setattr(emulated_cupy, "pack_arguments", recording)
    for capturable in (False, True):
        recorded.clear()
        _train("cuda", capturable)
        values = {v for v, _ in recorded[1:]}
        if capturable:
            assert len(values) == 1 and len({c for _, c in recorded}) == 1 and recorded[0][1] != 0
        else:
            assert len(values) == 3 and {c for _, c in recorded} == {0}  # a null counter


def test_capturable_adam_step_launch_count(emulated_cuda):
    """One more launch than eager Adam (the counter's increment), no device-to-host copy."""
    events = count_step(emulated_cuda, "adam_capturable", True, batch=16)
    launches, copies = emulated_cuda.counts(events)
    assert copies == 0 and launches == 14, "\n".join(describe_events(events))
