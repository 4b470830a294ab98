"""gradflow against the hand NumPy floor, paired round by round in one process, in CPU time.

    python -m benchmarks.paired                                   # mlp, B = 64/256/1024/4096
    python -m benchmarks.paired --workloads mlp,mlp_step --rounds 15
    OPENBLAS_NUM_THREADS=1 python -m benchmarks.paired            # the one-thread figures

Each round runs a block of the floor and a block of gradflow (``nn.MLP``'s fused layers, as
``gradflow-fused`` in the suite), the order alternating, and takes their ratio; the figure is
the median of the rounds' ratios with its quartiles. Times are ``time.process_time`` — CPU time
of every thread of the process, BLAS workers included — so another job's load does not count,
and a pool's spinning threads count against both sides alike. On a shared machine this is
steadier than wall time; the suite's figures (``run.py``) are wall time on a quiet one.

Runs as a file too (``python benchmarks/paired.py``), so an older checkout on PYTHONPATH can
be measured by the same code.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks.contenders import gradflow_impl, numpy_hand
from benchmarks.workloads import make_case


def paired(workload, batch, rounds, clock=time.process_time, block=0.04):
    """(median gradflow time, median floor time, median ratio, (q1, q3) of the ratios)."""
    case = make_case(workload, batch)
    steps = {"gradflow": gradflow_impl.build(case, True), "numpy": numpy_hand.build(case)}
    for _ in range(5):
        for step in steps.values():
            step()
    start = clock()
    steps["numpy"]()
    iterations = max(3, int(block / max(clock() - start, 1e-5)))
    times = {name: [] for name in steps}
    ratios = []
    for r in range(rounds):
        for name in (("gradflow", "numpy") if r % 2 else ("numpy", "gradflow")):
            step = steps[name]
            start = clock()
            for _ in range(iterations):
                step()
            times[name].append((clock() - start) / iterations)
        ratios.append(times["gradflow"][-1] / times["numpy"][-1])
    return (statistics.median(times["gradflow"]), statistics.median(times["numpy"]),
            statistics.median(ratios), tuple(np.percentile(ratios, [25, 75])))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="mlp")
    parser.add_argument("--batches", default="64,256,1024,4096")
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args(argv)
    for workload in args.workloads.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            g, n, ratio, (q1, q3) = paired(workload, batch, args.rounds)
            print(f"{workload}/B={batch}: gradflow {g * 1e6:.0f} µs, numpy {n * 1e6:.0f} µs, "
                  f"ratio {ratio:.3f} (quartiles {q1:.3f}-{q3:.3f})", flush=True)


if __name__ == "__main__":
    main()
