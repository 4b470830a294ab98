"""One training step of the textbook MLP (784-256-10, ReLU, softmax cross-entropy, SGD with
momentum) on a GPU: gradflow against the same step hand-written in CuPy, and PyTorch CUDA when
installed, timed in the same run on the same data.

    python -m benchmarks.gpu_step [--batch 128] [--repeat 50] [--dtype float32]
    python -m benchmarks.gpu_step --emulated     # count launches and copies, no GPU needed

The hand-written step is the bar: cuBLAS for the three matmuls per layer, one CuPy expression per
elementwise stage. gradflow's overhead over it is graph bookkeeping plus whatever its fused
kernels do not save; "gradflow fused" runs the hidden layer as one ``linear_relu`` op (the
bias_act_forward / bias_act_backward kernels), "gradflow" as ``linear`` then ``relu``. On a machine without a usable GPU this prints why and exits 0.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

SIZES = (784, 256, 10)


def make_data(batch, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, SIZES[0])).astype(dtype)
    y = rng.integers(0, SIZES[-1], size=batch)
    params = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        params.append((rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(dtype))
        params.append(np.zeros(n_out, dtype))
    return x, y, params


def cupy_step(cp, x, y, params, buffers, lr=0.05, momentum=0.9):
    """Forward, backward and SGD by hand: what gradflow's step computes, with nothing else."""
    W1, b1, W2, b2 = params
    z1 = x @ W1.T + b1
    h = cp.maximum(z1, 0)
    logits = h @ W2.T + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = cp.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    rows = cp.arange(len(y))
    loss = -cp.log(probs[rows, y]).mean()
    probs[rows, y] -= 1
    g_logits = probs / len(y)
    grads = [None, None, g_logits.T @ h, g_logits.sum(axis=0)]
    g_z1 = (g_logits @ W2) * (h > 0)
    grads[0], grads[1] = g_z1.T @ x, g_z1.sum(axis=0)
    for p, g, b in zip(params, grads, buffers):
        b *= momentum
        b += g
        p -= lr * b
    return loss


def time_steps(step, synchronize, repeat):
    for _ in range(3):  # warm-up: kernel compilation, memory pool growth, cuBLAS handles
        step()
    synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---- the launch budget (--emulated) ----

def gradflow_step(gf, x, y, params, optimizer, fused_output):
    """The textbook MLP step as a user writes it: fused hidden layer (``nn.MLP``'s default),
    output layer, softmax cross-entropy, backward, optimizer step."""
    import gradflow.nn.functional as F

    W1, b1, W2, b2 = params
    optimizer.zero_grad()
    h = F.linear_act(x, W1, b1, "relu")
    if fused_output:
        loss = F.linear_cross_entropy(h, W2, b2, y)
    else:
        loss = F.cross_entropy(F.linear(h, W2, b2), y)
    loss.backward()
    optimizer.step()
    return loss


def count_step(emulation, optimizer_name, fused_output, batch=128, dtype="float32", warmup=2):
    """(events of one step after ``warmup`` steps) on the emulated CuPy: every launch and
    device-to-host copy with the gradflow function that issued it."""
    import gradflow as gf
    import gradflow.optim

    x, y, params = make_data(batch, dtype)
    gf_x, gf_y = gf.tensor(x, device="cuda"), gf.tensor(y, device="cuda")
    gf_params = [gf.nn.Parameter(gf.tensor(p, device="cuda")) for p in params]
    if optimizer_name in ("adam", "adam_capturable"):  # capturable: the device step counter
        optimizer = gf.optim.Adam(gf_params, lr=1e-3, capturable=optimizer_name == "adam_capturable")
    else:
        optimizer = gf.optim.SGD(gf_params, lr=0.05, momentum=0.9)
    for _ in range(warmup):  # optimizer state and kernel modules are made in the first steps
        gradflow_step(gf, gf_x, gf_y, gf_params, optimizer, fused_output)
    start = len(emulation.events)
    gradflow_step(gf, gf_x, gf_y, gf_params, optimizer, fused_output)
    return emulation.events[start:]


def describe_events(events) -> list[str]:
    """One line per issuing function, in order of first appearance: its launches and copies."""
    by_where: dict[str, list] = {}
    for event in events:
        by_where.setdefault(event.where, []).append(event)
    lines = []
    for where, group in by_where.items():
        names = [("copy " if e.kind == "copy" else "") + e.what.replace("gradflow::", "")
                 for e in group]
        lines.append(f"  {where:42s} {len(group):2d}  {', '.join(names)}")
    return lines


def emulated(args):
    """Launch and copy counts of the step on the emulated CuPy (tests/kernels/emulated_cupy.py)."""
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "kernels"))
    from emulated_cupy import emulated_cuda

    import gradflow.nn.functional as F

    variants = [("textbook", False)]
    if hasattr(F, "linear_cross_entropy"):
        variants.append(("fused output layer", True))
    with emulated_cuda() as emulation:
        for optimizer_name in ("adam", "sgd"):
            for label, fused_output in variants:
                events = count_step(emulation, optimizer_name, fused_output, args.batch, args.dtype)
                launches, copies = emulation.counts(events)
                print(f"{optimizer_name.upper()} step, {label} (MLP {'-'.join(map(str, SIZES))}, "
                      f"batch {args.batch}, {args.dtype}, emulated CuPy)")
                print(f"launches per step: {launches}; device-to-host copies per step: {copies}")
                print("\n".join(describe_events(events)))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--emulated", action="store_true",
                        help="count kernel launches and device-to-host copies per step on the "
                             "emulated CuPy (tests/kernels), without a GPU")
    args = parser.parse_args(argv)
    if args.emulated:
        return emulated(args)

    from gradflow.backends.cuda_probe import is_available, why_cuda_unusable

    if not is_available():
        print(f"gpu_step: no GPU here, nothing to time ({why_cuda_unusable() or 'GRADFLOW_DEVICE=cpu'})")
        return 0

    import cupy as cp

    import gradflow as gf
    import gradflow.nn.functional as F
    import gradflow.optim

    x, y, params = make_data(args.batch, args.dtype)
    synchronize = cp.cuda.Device().synchronize
    results = {}

    x_gpu, y_gpu = cp.asarray(x), cp.asarray(y)
    raw_params = [cp.asarray(p) for p in params]
    raw_buffers = [cp.zeros_like(p) for p in raw_params]
    results["cupy by hand"] = time_steps(
        lambda: cupy_step(cp, x_gpu, y_gpu, raw_params, raw_buffers), synchronize, args.repeat)

    gf_x, gf_y = gf.tensor(x, device="cuda"), gf.tensor(y, device="cuda")
    gf_params = [gf.nn.Parameter(gf.tensor(p, device="cuda")) for p in params]
    optimizer = gf.optim.SGD(gf_params, lr=0.05, momentum=0.9)

    def gradflow_step(hidden_layer):
        def step():
            W1, b1, W2, b2 = gf_params
            optimizer.zero_grad()
            loss = F.cross_entropy(F.linear(hidden_layer(gf_x, W1, b1), W2, b2), gf_y)
            loss.backward()
            optimizer.step()
        return step

    results["gradflow"] = time_steps(
        gradflow_step(lambda x, w, b: F.relu(F.linear(x, w, b))), synchronize, args.repeat)
    # One linear_relu op: the bias_act_forward / bias_act_backward kernels.
    results["gradflow fused"] = time_steps(
        gradflow_step(lambda x, w, b: F.linear_act(x, w, b, "relu")), synchronize, args.repeat)

    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and torch.cuda.is_available():
        t_x, t_y = torch.as_tensor(x, device="cuda"), torch.as_tensor(y, device="cuda")
        t_params = [torch.nn.Parameter(torch.as_tensor(p, device="cuda")) for p in params]
        t_optimizer = torch.optim.SGD(t_params, lr=0.05, momentum=0.9)

        def torch_step():
            W1, b1, W2, b2 = t_params
            t_optimizer.zero_grad()
            h = torch.relu(torch.nn.functional.linear(t_x, W1, b1))
            loss = torch.nn.functional.cross_entropy(torch.nn.functional.linear(h, W2, b2), t_y)
            loss.backward()
            t_optimizer.step()

        results["torch cuda"] = time_steps(torch_step, torch.cuda.synchronize, args.repeat)

    device = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"]
    device = device.decode() if isinstance(device, bytes) else device
    print(f"MLP {'-'.join(map(str, SIZES))} training step, batch {args.batch}, {args.dtype}, "
          f"{device}, median of {args.repeat}")
    base = results["cupy by hand"]
    for name, seconds in results.items():
        print(f"  {name:14s} {seconds * 1e6:9.1f} us   {seconds / base:5.2f}x cupy by hand")
    return 0


if __name__ == "__main__":
    sys.exit(main())
