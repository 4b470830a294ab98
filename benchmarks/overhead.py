"""Per-op overhead in one process: gradflow's chain5 step against PyTorch eager's, rounds alternating.

    python -m benchmarks.overhead                     # chain5, 15 rounds, one thread
    python -m benchmarks.overhead --case chain10 --rounds 31
    python -m benchmarks.overhead --profile           # where gradflow's chain5 step spends its time
    python -m benchmarks.overhead --backward-peak     # bytes a textbook-MLP backward allocates at its peak

Blocks are timed by this thread's CPU time (``time.thread_time``; PyTorch is held to one
thread): on a shared, loaded machine the wall clock also counts the time other jobs held the
core, the thread's CPU time does not. The machine is shared and noisy, so the figures to quote are the *paired* ratio — in each round
both contenders run a short block of steps back to back (the order alternates), and the ratio of
the two block times is taken within the round; the median over rounds is reported with its
quartiles — and, the headline, the ratio of the two contenders' fastest blocks, the least
disturbed ones (on a busy 2-core machine the paired median still swings by ±20%; the fastest-block
ratio repeats to about ±3%).
Comparing two versions of gradflow means comparing their paired ratios against the same PyTorch.
Workloads come from ``benchmarks/workloads.py`` and steps from the contenders, so this measures
exactly what ``benchmarks.run`` reports as chain5.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from .harness import contender
from .workloads import make_case


def block_time(step, iterations, clock=time.thread_time):
    start = clock()
    for _ in range(iterations):
        step()
    return (clock() - start) / iterations


def paired(steps, rounds, iterations):
    """Per-round seconds per step for each of the two steps, the order swapped every round."""
    names = list(steps)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(block_time(steps[name], iterations[name]))
    return times


def quartiles(values):
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def backward_peaks(batch=256):
    """tracemalloc's peak during ``loss.backward()`` of the textbook MLP (L2 penalty, so each
    weight gets two gradient contributions): with .grad cleared first, and accumulating into the
    .grad of the previous backward (gradient accumulation over micro-batches)."""
    import tracemalloc

    import gradflow as gf

    from .contenders.gradflow_impl import _params, mlp_loss

    case = make_case("mlp", batch)
    x, labels = gf.tensor(case.arrays["x"]), gf.tensor(case.arrays["labels"])
    layers = _params(case)
    flat = [p for layer in layers for p in layer]

    def peak(clear):
        if clear:
            for p in flat:
                p.grad = None
        loss = mlp_loss(x, labels, layers)
        tracemalloc.start()
        loss.backward()
        result = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return result

    fresh = min(peak(True) for _ in range(4))
    accumulating = min(peak(False) for _ in range(4))
    print(f"mlp B={batch} backward peak: {fresh / 1e6:.3f} MB with .grad cleared, "
          f"{accumulating / 1e6:.3f} MB accumulating into .grad")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", default="chain5")
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--block", type=int, default=100, help="steps per contender per round")
    parser.add_argument("--profile", action="store_true", help="cProfile gradflow's step instead")
    parser.add_argument("--backward-peak", action="store_true", help="the MLP backward's allocation peak instead")
    args = parser.parse_args(argv)
    if args.backward_peak:
        backward_peaks()
        return

    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    case = make_case(args.case, 0)
    build, _ = contender("gradflow")
    gradflow_step = build(case)
    if args.profile:
        import cProfile
        import pstats

        for _ in range(1000):
            gradflow_step()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(20000):
            gradflow_step()
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)
        return
    torch_build, missing = contender("torch")
    if torch_build is None:
        raise SystemExit(f"PyTorch is needed for the paired ratio: {missing}")
    import torch

    torch.set_num_threads(1)
    steps = {"gradflow": gradflow_step, "torch": torch_build(case)}
    for step in steps.values():
        for _ in range(200):
            step()
    # Short blocks, many rounds: on a loaded machine most blocks are disturbed (cache, frequency,
    # preemption), and the quiet ones — each contender's fastest block — say what the code costs.
    iterations = {name: args.block for name in steps}
    times = paired(steps, args.rounds, iterations)
    ratios = [g / t for g, t in zip(times["gradflow"], times["torch"])]
    for name, values in times.items():
        low, mid, high = quartiles(values)
        print(f"{name:>9}: {min(values) * 1e6:7.1f} µs per step at the fastest, median {mid * 1e6:.1f} "
              f"(quartiles {low * 1e6:.1f}–{high * 1e6:.1f})")
    low, mid, high = quartiles(ratios)
    fastest = min(times["gradflow"]) / min(times["torch"])
    print(f"{args.case} gradflow / torch: fastest blocks {fastest:.2f}x; paired by round {mid:.2f}x "
          f"(quartiles {low:.2f}–{high:.2f}; {args.rounds} rounds of {args.block} steps, "
          f"{time.strftime('%Y-%m-%d %H:%M')})")


if __name__ == "__main__":
    main()
