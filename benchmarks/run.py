"""Run the benchmark suite and print medians, spreads and ratios; write JSON and a PNG chart.

    python -m benchmarks.run                 # every workload, library-default threads and one thread
    python -m benchmarks.run --quick         # the core bars only; writes results/quick.json
    python -m benchmarks.run --threads default   # only the headline setting

The headline table is taken as users run: library-default thread pools (no ``*_NUM_THREADS`` in
the workers' environment). The one-thread table (every pool pinned to one thread) stands beside
it. Hand NumPy and gradflow share a process and alternate round by round (paired ratios); PyTorch
and JAX each get their own processes. The groups and the thread settings run round-robin,
``--processes`` times each, and their rounds are pooled. Each worker reports threadpoolctl's view
of its thread pools, which the JSON keeps.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .workloads import DEFAULT_CASES, QUICK_CASES, make_case

GROUPS = [["numpy", "gradflow", "gradflow-fused"], ["torch"], ["jax", "jax-jit"]]
RESULTS = Path(__file__).with_name("results")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")
DEFAULT_THREADS = "default"


def _case_names(pairs):
    return [make_case(w, b).name if not w.startswith("chain") else w for w, b in pairs]


def _worker_env(threads):
    """The workers' environment: ``threads`` "default" leaves every pool at its library default
    (any ``*_NUM_THREADS`` of the calling shell removed), a number pins every pool to it."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env.setdefault("JAX_PLATFORMS", "cpu")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if threads != DEFAULT_THREADS:
        for name in THREAD_VARIABLES[:3]:
            env[name] = str(threads)
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                            f"intra_op_parallelism_threads={threads}").strip()
    return env


def _thread_settings(text):
    settings = []
    for item in text.split(","):
        item = item.strip()
        if item in (DEFAULT_THREADS, "0"):
            settings.append(DEFAULT_THREADS)
        elif item.isdigit():
            settings.append(item)
        else:
            raise SystemExit(f"--threads takes 'default' or thread counts, comma separated; got {item!r}")
    return settings


def collect(groups, cases, processes, rounds, settings):
    """For each thread setting: pooled {case: {contender: [seconds per iteration per round]}} and
    threadpoolctl's view per group; and the skipped contenders. Settings alternate within each
    process round, so the machine's drift reaches every setting alike."""
    runs = {t: {"pooled": {}, "threadpools": {}} for t in settings}
    skipped = {}
    for p in range(processes):
        for threads in settings:
            pooled = runs[threads]["pooled"]
            for group in groups:
                command = [sys.executable, "-m", "benchmarks.harness", ",".join(group), ",".join(cases), str(rounds)]
                done = subprocess.run(command, capture_output=True, text=True, env=_worker_env(threads))
                if done.returncode != 0:
                    tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
                    for name in group:
                        skipped[name] = f"worker failed: {tail[0]}"
                    continue
                report = json.loads(done.stdout)
                skipped.update(report["skipped"])
                runs[threads]["threadpools"].setdefault("+".join(group), report.get("threadpools"))
                for case, by_contender in report["times"].items():
                    for name, times in by_contender.items():
                        pooled.setdefault(case, {}).setdefault(name, []).extend(times)
                print(f"  process {p + 1}/{processes}, threads {threads}: {'+'.join(group)} done", file=sys.stderr)
    return runs, skipped


def _quartiles(values):
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def summarize(pooled):
    """Median, interquartile range and ratios for each case."""
    summary = {}
    for case, by_contender in pooled.items():
        row = {"median_s": {}, "iqr_s": {}, "ratios": {}}
        for name, times in by_contender.items():
            low, high = _quartiles(times)
            row["median_s"][name] = statistics.median(times)
            row["iqr_s"][name] = [low, high]
        medians = row["median_s"]
        for ours in ("gradflow", "gradflow-fused"):
            if "numpy" in by_contender and ours in by_contender:
                # Same process, adjacent blocks: the per-round ratio cancels the machine's drift.
                paired = [g / n for g, n in zip(by_contender[ours], by_contender["numpy"])]
                row["ratios"][f"{ours}/numpy"] = statistics.median(paired)
        for name in ("torch", "jax", "jax-jit"):
            if name in medians and "gradflow" in medians:
                row["ratios"][f"gradflow/{name}"] = medians["gradflow"] / medians[name]
            if name in medians and "numpy" in medians:
                row["ratios"][f"{name}/numpy"] = medians[name] / medians["numpy"]
        summary[case] = row
    return summary


def _format_time(seconds):
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def table(summary, contenders):
    columns = [c for c in contenders if any(c in row["median_s"] for row in summary.values())]
    ratio_names = sorted({r for row in summary.values() for r in row["ratios"]},
                         key=lambda r: (not r.startswith("gradflow/"), r))
    lines = ["| case | " + " | ".join(columns) + " | " + " | ".join(ratio_names) + " |",
             "|---" * (1 + len(columns) + len(ratio_names)) + "|"]
    for case, row in summary.items():
        cells = []
        for name in columns:
            if name not in row["median_s"]:
                cells.append("–")
                continue
            median = row["median_s"][name]
            low, high = row["iqr_s"][name]
            cells.append(f"{_format_time(median)} ±{(high - low) / 2 / median * 100:.0f}%")
        ratios = [f"{row['ratios'][r]:.2f}x" if r in row["ratios"] else "–" for r in ratio_names]
        lines.append(f"| {case} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


# Issue 12's bars: (case, largest gradflow / hand NumPy ratio); gradflow faster than PyTorch at
# these cases; chain5 at most 0.6x PyTorch.
NUMPY_BARS = [(f"{w}/B={b}", 1.10 if b <= 256 else 1.05) for w in ("mlp", "mlp_step") for b in (64, 256, 1024, 4096)]
TORCH_BARS = ["mlp/B=64", "mlp/B=256", "mlp_step/B=64", "mlp_step/B=256"]
CHAIN_BAR = 0.6


def bars(summary, memory):
    """The bars of issue 12 (and issue 7's memory bar), each with its measured figure."""
    lines = []
    for case, bar in NUMPY_BARS:
        ratios = summary.get(case, {}).get("ratios", {})
        for ours in ("gradflow", "gradflow-fused"):
            if f"{ours}/numpy" in ratios:
                r = ratios[f"{ours}/numpy"]
                lines.append(f"{case}: {ours} / hand NumPy = {r:.2f}x (bar ≤ {bar:.2f}x): {'met' if r <= bar else 'MISSED'}")
    for case in TORCH_BARS:
        ratios = summary.get(case, {}).get("ratios", {})
        if "gradflow/torch" in ratios:
            r = ratios["gradflow/torch"]
            lines.append(f"{case}: gradflow / PyTorch = {r:.2f}x (bar < 1x): {'met' if r < 1 else 'MISSED'}")
    ratios = summary.get("chain5", {}).get("ratios", {})
    if "gradflow/torch" in ratios:
        r = ratios["gradflow/torch"]
        lines.append(f"chain5: gradflow / PyTorch = {r:.2f}x (bar ≤ {CHAIN_BAR}x): {'met' if r <= CHAIN_BAR else 'MISSED'}")
    gradflow_rows, torch_rows = memory.get("gradflow", {}), memory.get("torch", {})
    for case, row in gradflow_rows.items():
        if isinstance(row, dict) and case in torch_rows and isinstance(torch_rows[case], dict):
            ours, theirs = row["graph_walk"], torch_rows[case]["saved_tensor_hooks"]
            lines.append(f"(e) {case}: retained {ours / 2**20:.2f} MiB vs PyTorch {theirs / 2**20:.2f} MiB "
                         f"({ours / theirs:.2f}x, bar ≤ 1x): {'met' if ours <= theirs else 'MISSED'}")
    return "\n".join(lines)


def plot(summary, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart written (pip install matplotlib)", file=sys.stderr)
        return None
    cases = list(summary)
    names = [n for n in ("gradflow", "gradflow-fused", "torch", "jax", "jax-jit")
             if any(n in summary[c]["median_s"] for c in cases)]
    fig, ax = plt.subplots(figsize=(1.2 * len(cases) + 3, 4))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        values = [summary[c]["median_s"].get(name, float("nan")) / summary[c]["median_s"]["numpy"]
                  if "numpy" in summary[c]["median_s"] else float("nan") for c in cases]
        ax.bar([k + i * width for k in range(len(cases))], values, width, label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks([k + width * (len(names) - 1) / 2 for k in range(len(cases))], cases, rotation=30, ha="right")
    ax.set_ylabel("time / hand-written NumPy (log)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def _setting_title(threads):
    return "library-default threads" if threads == DEFAULT_THREADS else f"{threads} thread(s) per pool"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the core bars; writes quick.json, not latest.json")
    parser.add_argument("--cases", help="comma list, e.g. mlp/B=256,chain5 (default: all); writes cases.json")
    parser.add_argument("--processes", type=int, default=2, help="processes per contender group and thread setting")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per process")
    # Users run with library defaults, so they make the headline table; one thread per pool is the
    # second table (what a machine shared with other jobs, or a data-loader per core, gives).
    parser.add_argument("--threads", default=f"{DEFAULT_THREADS},1",
                        help="thread settings, the first the headline: 'default' (library defaults) or N")
    parser.add_argument("--contenders", default="numpy,gradflow,gradflow-fused,torch,jax,jax-jit")
    parser.add_argument("--no-memory", action="store_true", help="skip workload (e)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON and PNG")
    args = parser.parse_args(argv)

    wanted = args.contenders.split(",")
    groups = [[c for c in g if c in wanted] for g in GROUPS]
    groups = [g for g in groups if g]
    settings = _thread_settings(args.threads)
    cases = args.cases.split(",") if args.cases else _case_names(QUICK_CASES if args.quick else DEFAULT_CASES)
    # Only a full run replaces the tracked results; partial runs get files of their own.
    stem = "cases" if args.cases else "quick" if args.quick else "latest"
    started, load_before = time.time(), os.getloadavg()
    runs, skipped = collect(groups, cases, args.processes, args.rounds, settings)
    memory = {}
    if not args.no_memory:
        from .memory import run_all
        memory = run_all()

    results = {}
    for threads in settings:
        summary = summarize(runs[threads]["pooled"])
        results[threads] = {"cases": summary, "threadpools": runs[threads]["threadpools"],
                            "raw_times_s": runs[threads]["pooled"]}
        headline = threads == settings[0]
        print(f"## {'Headline: ' if headline else ''}{_setting_title(threads)}\n")
        print(table(summary, wanted))
        print()
        print(bars(summary, memory if headline else {}))
        print()
    for name, why in sorted(skipped.items()):
        print(f"skipped {name}: {why}")
    if memory:
        print("memory (bytes saved for backward):", json.dumps(memory))

    args.out.mkdir(parents=True, exist_ok=True)
    record = {"when": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(time.time() - started, 1),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average_before": load_before, "load_average_after": os.getloadavg()},
              "options": vars(args) | {"out": str(args.out)}, "headline_threads": settings[0],
              "cases": results[settings[0]]["cases"], "by_threads": results, "skipped": skipped,
              "memory": memory}
    (args.out / f"{stem}.json").write_text(json.dumps(record, indent=1))
    chart = plot(results[settings[0]]["cases"], args.out / f"{stem}.png")
    print(f"wrote {args.out / f'{stem}.json'}" + (f" and {chart}" if chart else "")
          + f" in {record['seconds']:.0f} s")


if __name__ == "__main__":
    main()
