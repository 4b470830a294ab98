"""``gf.cuda.graphed`` on the emulated CuPy (gradflow/cuda.py, the note [graphed steps]): a
captured training step replayed gives the eager steps' parameters and losses; shape, dtype and
Python-path changes raise. The emulated capture records every device operation with its kernel
argument bytes and leaves earlier memory untouched; Graph.launch re-executes the recording."""
import numpy as np
import pytest

import gradflow as gf
from benchmarks.gpu_step import gradflow_step, make_data
from gradflow.errors import DeviceError, DTypeError, ShapeError


def _setup(optimizer_name):
    _, _, params = make_data(16, "float32")
    ps = [gf.nn.Parameter(gf.tensor(p, device="cuda")) for p in params]
    if optimizer_name == "adam":
        optimizer = gf.optim.Adam(ps, lr=1e-2, capturable=True)
    else:
        optimizer = gf.optim.SGD(ps, lr=0.05, momentum=0.9)
    return ps, optimizer


def _batches(count):
    rng = np.random.default_rng(7)
    x, y, _ = make_data(16, "float32")
    return [(gf.tensor(rng.permutation(x), device="cuda"), gf.tensor(rng.permutation(y), device="cuda"))
            for _ in range(count)]


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_replayed_steps_give_the_eager_parameters(emulated_cuda, optimizer_name):
    batches = _batches(5)
    eager_params, eager_opt = _setup(optimizer_name)
    eager_losses = [float(gradflow_step(gf, x, y, eager_params, eager_opt, True)) for x, y in batches]

    params, optimizer = _setup(optimizer_name)
    calls = []

    def step(x, y):
        calls.append(1)
        return gradflow_step(gf, x, y, params, optimizer, True)

    graphed = gf.cuda.graphed(step, warmup=2, optimizers=[optimizer])
    losses = [float(graphed(x, y)) for x, y in batches]
    assert graphed.eager_calls == 2 and graphed.replays == 3 and len(calls) == 3  # 2 eager + capture
    np.testing.assert_allclose(losses, eager_losses, rtol=1e-6)
    for got, want in zip(params, eager_params):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)


def test_a_replay_is_the_captured_launches_plus_the_input_copies(emulated_cuda):
    params, optimizer = _setup("adam")
    graphed = gf.cuda.graphed(lambda x, y: gradflow_step(gf, x, y, params, optimizer, True),
                              optimizers=[optimizer])
    batches = _batches(4)
    for x, y in batches[:3]:
        graphed(x, y)
    start = len(emulated_cuda.events)
    graphed(*batches[3])
    events = emulated_cuda.events[start:]
    # The graph's 14 kernels (eager capturable Adam's) and its 2 memcpy nodes (backward's seed,
    # the gradients' address table), after the 2 input copies; no device-to-host copy.
    assert emulated_cuda.counts(events) == (16, 0)
    names = [e.what for e in events if e.kind == "launch"]
    assert names[:2] == ["copyto", "copyto"] and sum("adam_multi_tensor" in n for n in names) == 1
    assert [e.kind for e in events].count("h2d") == 2


def test_changed_shapes_dtypes_and_devices_raise(emulated_cuda):
    params, optimizer = _setup("sgd")
    graphed = gf.cuda.graphed(lambda x, y: gradflow_step(gf, x, y, params, optimizer, True))
    (x, y), = _batches(1)
    graphed(x, y)
    graphed(x, y)  # captured
    with pytest.raises(ShapeError, match=r"float32\[16, 784\].*float32\[8, 784\]"):
        graphed(x[:8], y[:8])
    with pytest.raises(DTypeError, match="float64"):
        graphed(x.to(np.float64), y)
    with pytest.raises(DeviceError, match="CUDA tensors"):
        graphed(x.cpu(), y)


def test_a_python_path_that_changes_at_capture_raises(emulated_cuda):
    params, optimizer = _setup("sgd")
    calls = []

    def step(x, y):
        calls.append(1)
        loss = gradflow_step(gf, x, y, params, optimizer, True)
        return loss * 2 if len(calls) > 1 else loss  # a branch on the call count

    graphed = gf.cuda.graphed(step)
    (x, y), = _batches(1)
    graphed(x, y)
    with pytest.raises(RuntimeError, match="Python path changed"):
        graphed(x, y)


def test_eager_adam_and_host_reads_are_refused(emulated_cuda):
    params, _ = _setup("sgd")
    with pytest.raises(ValueError, match="capturable=True"):
        gf.cuda.graphed(lambda x: x, optimizers=[gf.optim.Adam(params)])
    graphed = gf.cuda.graphed(lambda x: float((x * 2).sum()))
    x = gf.ones(3, device="cuda")
    assert graphed(x) == 6.0
    with pytest.raises(RuntimeError, match="StreamCapture"):
        graphed(x)


def test_the_emulation_shows_why_eager_adam_is_refused(emulated_cuda):
    """The control that the replay is faithful: eager Adam passes step 2's bias corrections by
    value, and a graph captured there replays them forever — its parameters leave the eager ones."""
    batches = _batches(5)

    def train(graph):
        ps, _ = _setup("sgd")
        optimizer = gf.optim.Adam(ps, lr=1e-2)  # not capturable, not declared to graphed
        step = lambda x, y: gradflow_step(gf, x, y, ps, optimizer, True)  # noqa: E731
        step = gf.cuda.graphed(step) if graph else step
        for x, y in batches:
            step(x, y)
        return [p.numpy() for p in ps]

    eager, frozen = train(False), train(True)
    assert max(np.abs(a - b).max() for a, b in zip(eager, frozen)) > 1e-3
