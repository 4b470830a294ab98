"""Convolution forward + backward, gradflow vs PyTorch eager on the CPU, each in its own process.

Issue 14's bar: conv2d forward+backward at a LeNet-sized batch within 1.5x of PyTorch. Cases:
LeNet-5's two convolutions at batch 64 (1→6 channels 5×5 on 32×32, 6→16 5×5 on 14×14), and one
training step of ``gradflow.models.build("cnn")`` (conv–BatchNorm–ReLU–pool ×2 + Linear, Adam) at
batch 64 on 8×8 images against the same network in torch.nn:

    python -m benchmarks.conv [--threads 1] [--repeat 30] [--processes 3] [--clock cpu]

The two contenders' processes alternate ``--processes`` times and each case reports the median
over all of them, so a change in the machine's load hits both alike.

``--threads`` sets OPENBLAS/OMP/MKL threads and torch.set_num_threads in the workers (1 by
default: on a shared machine BLAS threads fight over the cores and the medians wander; 0 leaves
the libraries' defaults). ``--clock cpu`` times each step in process CPU time (all threads
summed) instead of wall time: steadier on a loaded machine, and at one thread the same quantity.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

CASES = {
    "lenet_conv1/B=64": ((64, 1, 32, 32), (6, 1, 5, 5)),
    "lenet_conv2/B=64": ((64, 6, 14, 14), (16, 6, 5, 5)),
}


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter


def _time(step, repeat):
    for _ in range(3):
        step()
    times = []
    for _ in range(repeat):
        started = _clock()
        step()
        times.append(_clock() - started)
    return statistics.median(times)


def _gradflow_cases(repeat):
    import gradflow as gf
    import gradflow.nn.functional as F
    from gradflow.models import build

    rng = np.random.default_rng(0)
    results = {}
    for name, (x_shape, w_shape) in CASES.items():
        x = gf.tensor(rng.standard_normal(x_shape).astype(np.float32), requires_grad=True)
        w = gf.tensor(rng.standard_normal(w_shape).astype(np.float32), requires_grad=True)

        def step():
            x.grad = w.grad = None
            F.conv2d(x, w).sum().backward()
        results[name] = _time(step, repeat)
    gf.manual_seed(0)
    model = build("cnn")
    opt = gf.optim.Adam(model.parameters(), lr=1e-3)
    xb, yb = gf.tensor(rng.standard_normal((64, 64)).astype(np.float32)), gf.tensor(rng.integers(0, 10, 64))

    def train_step():
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    results["digits_cnn_step/B=64"] = _time(train_step, repeat)
    return results


def _torch_cases(repeat, threads):
    import torch

    if threads:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    results = {}
    for name, (x_shape, w_shape) in CASES.items():
        x = torch.tensor(rng.standard_normal(x_shape).astype(np.float32), requires_grad=True)
        w = torch.tensor(rng.standard_normal(w_shape).astype(np.float32), requires_grad=True)

        def step():
            x.grad = w.grad = None
            torch.nn.functional.conv2d(x, w).sum().backward()
        results[name] = _time(step, repeat)
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Unflatten(1, (1, 8, 8)),
                          nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    xb = torch.tensor(rng.standard_normal((64, 64)).astype(np.float32))
    yb = torch.tensor(rng.integers(0, 10, 64))

    def train_step():
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    results["digits_cnn_step/B=64"] = _time(train_step, repeat)
    return results


def _worker(contender, repeat, threads, clock):
    global _clock
    _clock = CLOCKS[clock]
    results = _gradflow_cases(repeat) if contender == "gradflow" else _torch_cases(repeat, threads)
    print(json.dumps(results))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--clock", choices=tuple(CLOCKS), default="wall")
    parser.add_argument("--worker", choices=("gradflow", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args.worker, args.repeat, args.threads, args.clock)
    env = dict(os.environ)
    if args.threads:
        env.update({name: str(args.threads) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
    runs = {}
    for _ in range(args.processes):
        for contender in ("gradflow", "torch"):
            done = subprocess.run([sys.executable, "-m", "benchmarks.conv", "--worker", contender, "--repeat",
                                   str(args.repeat), "--threads", str(args.threads), "--clock", args.clock], capture_output=True,
                                  text=True, env=env)
            if done.returncode != 0:
                print(f"{contender}: failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            for case, seconds in json.loads(done.stdout).items():
                runs.setdefault(contender, {}).setdefault(case, []).append(seconds)
    times = {c: {case: statistics.median(v) for case, v in by_case.items()} for c, by_case in runs.items()}
    print(f"{'case':<24} {'gradflow':>10} {'torch':>10} {'ratio':>7}   (median of {args.processes} processes × "
          f"{args.repeat} steps, threads {args.threads or 'default'}, {args.clock} clock)")
    for case in times.get("gradflow", {}):
        g, t = times["gradflow"][case], times.get("torch", {}).get(case)
        ratio = f"{g / t:.2f}x" if t else "-"
        print(f"{case:<24} {g * 1e3:>8.2f}ms {t * 1e3 if t else float('nan'):>8.2f}ms {ratio:>7}")


if __name__ == "__main__":
    main()
