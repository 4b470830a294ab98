"""Where a textbook MLP step goes: BLAS, elementwise work and allocation, Python bookkeeping.

    python -m benchmarks.breakdown                  # mlp B=64 and 256, fwd+bwd, library-default threads
    python -m benchmarks.breakdown --batches 64 --workload mlp_step --profile

For gradflow (``nn.MLP``'s fused layers, as ``gradflow-fused`` in the suite) and the hand NumPy
floor, in one process, blocks alternating:

- **step**: one iteration of the workload;
- **BLAS**: the step's matrix products alone, on the same arrays (forward ``x Wᵀ`` per layer;
  backward ``gᵀh`` per layer and ``g W`` for every layer but the first: the same five products
  in both);
- **per-call floor**: the same step on a network of width 4 and batch 2, where the arithmetic
  is nil: what remains is the cost of the calls themselves — for gradflow its Python bookkeeping
  (apply, nodes, the engine's walk) plus NumPy's per-call overhead, for the floor NumPy's alone;
- **elementwise + allocation**: the rest (step − BLAS − per-call floor): bias, ReLU, softmax,
  the penalty's gradient, sums, and writing fresh arrays.

``--profile`` adds cProfile's top functions of the gradflow step (by own time). Figures are
medians of ``--rounds`` blocks; compare within one run.

``--per-call`` prints only the per-call figures, each the fastest of ``--rounds`` blocks of
1500 steps in process CPU time (the least disturbed block on a shared machine): the gradflow
and hand-NumPy steps of the 4-wide network at batch 2 (the workload's step, SGD update
included for ``mlp_step``) and gradflow's chain5. Runs as a file too, like ``paired.py``, so
two versions compare by the same code: ``PYTHONPATH=<checkout> python benchmarks/breakdown.py
--per-call --workload mlp_step`` from outside the checkouts, alternating between them.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import time

import numpy as np

from benchmarks.contenders import gradflow_impl, numpy_hand
from benchmarks.workloads import make_case


def _tiny_case(workload):
    """The workload's step on a 4-wide network and a batch of 2: the calls without the work."""
    case = make_case(workload, 2)
    rng = np.random.default_rng(1)
    case.arrays["x"] = rng.standard_normal((2, 4)).astype(np.float32)
    case.arrays["labels"] = np.array([0, 2])
    case.arrays["layers"] = [(rng.standard_normal((4, 4)).astype(np.float32), np.zeros(4, np.float32)),
                             (rng.standard_normal((3, 4)).astype(np.float32), np.zeros(3, np.float32))]
    return case


def _blas_step(case):
    """The step's five matrix products on its own arrays, nothing else."""
    x = case.arrays["x"]
    (w1, _), (w2, _) = case.arrays["layers"]
    h = np.maximum(x @ w1.T, 0)
    g = np.ones((x.shape[0], w2.shape[0]), np.float32)
    gh = np.ones_like(h)

    def step():
        z = x @ w1.T
        o = z @ w2.T
        gw2 = g.T @ h
        gz = g @ w2
        gw1 = gh.T @ x
        return o, gw2, gz, gw1
    return step


def _time(steps, rounds, clock):
    for step in steps.values():
        for _ in range(3):
            step()
    iterations = {}
    for name, step in steps.items():
        start = clock()
        step()
        iterations[name] = max(3, int(0.03 / max(clock() - start, 1e-6)))
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = clock()
            for _ in range(iterations[name]):
                step()
            times[name].append((clock() - start) / iterations[name])
    return {name: statistics.median(t) for name, t in times.items()}


def breakdown(workload, batch, rounds, clock=time.perf_counter):
    case, tiny = make_case(workload, batch), _tiny_case(workload)
    steps = {"gradflow": gradflow_impl.build(case, True), "numpy": numpy_hand.build(case),
             "gradflow tiny": gradflow_impl.build(tiny, True), "numpy tiny": numpy_hand.build(tiny),
             "blas": _blas_step(case)}
    t = _time(steps, rounds, clock)
    rows = {}
    for name in ("gradflow", "numpy"):
        rest = t[name] - t["blas"] - t[f"{name} tiny"]
        rows[name] = {"step": t[name], "blas": t["blas"], "calls": t[f"{name} tiny"], "elementwise": rest}
    return rows


def per_call(workload, rounds, clock=time.process_time, steps=1500):
    """Fastest block's seconds per step of the per-call floors (see the module docstring)."""
    tiny = _tiny_case(workload)
    cases = {f"gradflow {workload} (4-wide, batch 2)": gradflow_impl.build(tiny, True),
             f"numpy {workload} (4-wide, batch 2)": numpy_hand.build(tiny),
             "gradflow chain5": gradflow_impl.build(make_case("chain5", 0))}
    best = {}
    for name, step in cases.items():
        for _ in range(200):
            step()
        times = []
        for _ in range(rounds):
            start = clock()
            for _ in range(steps):
                step()
            times.append((clock() - start) / steps)
        best[name] = min(times)
    return best


def _us(seconds):
    return f"{seconds * 1e6:.0f} µs"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", default="mlp", choices=("mlp", "mlp_step"))
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--cpu-time", action="store_true",
                        help="time with process_time (steadier on a loaded machine; one thread only)")
    parser.add_argument("--profile", action="store_true", help="also print cProfile's top functions")
    parser.add_argument("--per-call", action="store_true", help="only the per-call floors, fastest block")
    args = parser.parse_args(argv)
    if args.per_call:
        for name, seconds in per_call(args.workload, args.rounds).items():
            print(f"{name}: {seconds * 1e6:.1f} µs")
        return
    clock = time.process_time if args.cpu_time else time.perf_counter
    print("| case | who | step | BLAS | per-call floor (bookkeeping) | elementwise + allocation |")
    print("|---|---|---|---|---|---|")
    for batch in (int(b) for b in args.batches.split(",")):
        rows = breakdown(args.workload, batch, args.rounds, clock)
        for name, row in rows.items():
            print(f"| {args.workload}/B={batch} | {name} | {_us(row['step'])} | {_us(row['blas'])} | "
                  f"{_us(row['calls'])} | {_us(row['elementwise'])} |")
        if args.profile:
            step = gradflow_impl.build(make_case(args.workload, batch), True)
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(200):
                step()
            profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(15)
            print(out.getvalue())


if __name__ == "__main__":
    main()
