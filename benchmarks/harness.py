"""Timing: contenders interleaved round by round (A B A B ...), so drift of a busy machine hits all
of them alike; one process per group of contenders that may share a thread pool.

A *worker* (``python -m benchmarks.harness GROUP CASES ROUNDS``) builds each case for the
contenders of its group, warms them up, then times ``ROUNDS`` rounds in which each contender runs
a block of iterations; it prints ``{case: {contender: [seconds per iteration, one per round]}}``
and threadpoolctl's view of its thread pools as JSON. ``run.py`` starts the workers round-robin
and pools their rounds.
"""
from __future__ import annotations

import importlib
import json
import sys
import time

from .contenders import CONTENDERS, Unsupported
from .workloads import make_case

ROUND_SECONDS = 0.05  # target length of one contender's block in one round
WARMUP_CALLS = 5


def contender(name):
    """(build, missing): ``build(case) -> step``, or None and the line saying why it is skipped."""
    module = importlib.import_module(CONTENDERS[name])
    if not module.AVAILABLE:
        return None, module.MISSING
    if name.startswith("gradflow"):
        fused = name == "gradflow-fused"
        return (lambda case: module.build(case, fused)), ""
    if name.startswith("jax"):
        jit = name == "jax-jit"
        return (lambda case: module.build(case, jit)), ""
    return module.build, ""


def block_time(step, iterations):
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return (time.perf_counter() - start) / iterations


def calibrate(step, target=ROUND_SECONDS):
    """Iterations per block so that one block takes about ``target`` seconds (at least 1)."""
    per_call = block_time(step, 1)
    iterations = 1
    while per_call * iterations < target / 4 and iterations < 1 << 20:
        iterations *= 2
        per_call = block_time(step, iterations)
    return max(1, int(target / max(per_call, 1e-9)))


def time_case(steps, rounds):
    """Per-iteration seconds of each step, one figure per round; the order rotates each round."""
    for step in steps.values():
        for _ in range(WARMUP_CALLS):
            step()
    iterations = {name: calibrate(step) for name, step in steps.items()}
    times = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(block_time(steps[name], iterations[name]))
    return times


def worker(group, case_names, rounds):
    results, skipped = {}, {}
    builders = {}
    for name in group:
        build, missing = contender(name)
        if build is None:
            skipped[name] = missing
        else:
            builders[name] = build
    for case_name in case_names:
        workload, _, batch = case_name.partition("/B=")
        case = make_case(workload, int(batch or 0))
        steps = {}
        for name, build in builders.items():
            try:
                steps[name] = build(case)
            except Unsupported:
                skipped.setdefault(f"{name}:{case_name}", "not implemented for this workload")
        if steps:
            results[case_name] = time_case(steps, rounds)
    return {"times": results, "skipped": skipped, "threadpools": thread_pools()}


def thread_pools():
    """threadpoolctl's view of the BLAS/OpenMP pools this process loaded (how many, how many
    threads each), or a line saying why there is none."""
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl is not installed (pip install threadpoolctl)"
    keys = ("user_api", "internal_api", "prefix", "version", "num_threads", "threading_layer", "filepath")
    return [{k: pool.get(k) for k in keys} for pool in threadpoolctl.threadpool_info()]


if __name__ == "__main__":
    group_arg, cases_arg, rounds_arg = sys.argv[1:4]
    json.dump(worker(group_arg.split(","), cases_arg.split(","), int(rounds_arg)), sys.stdout)
