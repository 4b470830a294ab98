"""``gradflow train`` on the bundled digits against the same training loop written in PyTorch.

    python -m benchmarks.train_vs_torch                  # 5 alternating pairs, 30 epochs each
    python -m benchmarks.train_vs_torch --runs 3 --epochs 20 --threads 1

Both train MLP 64-256-10 (ReLU) with softmax cross-entropy, Adam (lr 1e-3), batch 64, a new
shuffle every epoch, on the same standardized digits held in memory, and keep the same per-epoch
books (the running loss and accuracy read with ``.item()``), at library-default threads unless
``--threads`` says otherwise:

- ``gradflow train``: the command itself (``python -m gradflow train --device cpu``), as users run
  it; samples/s is its own per-epoch column (training only, evaluation excluded);
- ``gradflow loop``: the loop below written with gradflow's API (what the command costs over it);
- ``torch``: the loop below with ``torch.nn`` and ``torch.optim.Adam`` (torch 2.13.0, CPU).

Each is its own process and they alternate run by run, so the machine's drift reaches all alike.
The first epoch of each run is left out (imports, first-call caches, the command's memory column).
The figure is the median samples/s over the remaining epochs of all runs; ``gradflow/torch`` is
the median of per-run ratios of those medians (above 1: gradflow is faster). Results go to
``results/train_vs_torch.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("results")
HIDDEN, BATCH, LR = 256, 64, 1e-3
CONTENDERS = ("gradflow train", "gradflow loop", "torch")


def _digits():
    """The standardized digits exactly as ``gradflow train`` prepares them."""
    from gradflow.data import Standardizer, load_dataset

    data = load_dataset("digits")
    scale = Standardizer.fit(data.x_train, per_feature=data.kind != "image")
    return scale(data.x_train), data.y_train, scale(data.x_test), data.y_test


def torch_loop(epochs, seed):
    import numpy as np
    import torch
    import torch.nn.functional as F

    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in _digits())
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(x_train.shape[1], HIDDEN), torch.nn.ReLU(),
                                torch.nn.Linear(HIDDEN, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    rng = np.random.default_rng(seed)
    n, rows = len(y_train), []
    for _ in range(epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(n))
        started = time.perf_counter()
        total_loss = correct = 0.0
        for start in range(0, n, BATCH):
            index = order[start:start + BATCH]
            xb, yb = x_train[index], y_train[index]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(yb)
            correct += int((logits.detach().argmax(dim=1) == yb).sum().item())
        elapsed = time.perf_counter() - started
        model.eval()
        with torch.no_grad():
            test_acc = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
        rows.append({"samples_per_s": n / elapsed, "train_loss": total_loss / n, "test_acc": test_acc})
    return rows


def gradflow_loop(epochs, seed):
    import gradflow as gf
    import gradflow.nn.functional as F
    from gradflow.data import BatchIterator

    x_train, y_train, x_test, y_test = _digits()
    gf.manual_seed(seed)
    model = gf.nn.MLP([x_train.shape[1], HIDDEN, 10])
    optimizer = gf.optim.Adam(model.parameters(), lr=LR)
    batches = BatchIterator(x_train, y_train, batch_size=BATCH, shuffle=True, seed=seed)
    n, rows = len(y_train), []
    x_test_t, y_test_t = gf.tensor(x_test), gf.tensor(y_test)
    for _ in range(epochs):
        model.train()
        started = time.perf_counter()
        total_loss = correct = 0.0
        for xb, yb in batches:
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(yb)
            correct += int((logits.detach().argmax(axis=1) == yb).sum().item())
        elapsed = time.perf_counter() - started
        model.eval()
        with gf.no_grad():
            test_acc = float((model(x_test_t).argmax(axis=1) == y_test_t).float().mean().item())
        rows.append({"samples_per_s": n / elapsed, "train_loss": total_loss / n, "test_acc": test_acc})
    return rows


_ROW = re.compile(r"^\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)s\s+(\d+)\s")


def _env(threads):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["GRADFLOW_DEVICE"] = "cpu"
    if threads:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
    return env


def _run(contender, epochs, seed, threads):
    """Per-epoch rows of one run of ``contender`` in a fresh process."""
    if contender == "gradflow train":
        command = [sys.executable, "-m", "gradflow", "train", "--device", "cpu", "--epochs", str(epochs),
                   "--seed", str(seed), "--no-progress"]
    else:
        command = [sys.executable, "-m", "benchmarks.train_vs_torch", "--worker", contender,
                   "--epochs", str(epochs), "--seed", str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, env=_env(threads))
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"{contender} failed: {tail}")
    if contender != "gradflow train":
        return json.loads(done.stdout)
    rows = []
    for line in done.stdout.splitlines():
        match = _ROW.match(line)
        if match:
            rows.append({"samples_per_s": float(match[6]), "train_loss": float(match[2]),
                         "test_acc": float(match[4])})
    if len(rows) != epochs:
        raise RuntimeError(f"could not read {epochs} epoch rows from gradflow train:\n{done.stdout}")
    return rows


def _torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="alternating runs of each contender")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per run (the first is left out)")
    parser.add_argument("--threads", type=int, default=0, help="pin every pool to N threads (0: library defaults)")
    parser.add_argument("--out", type=Path, default=RESULTS / "train_vs_torch.json")
    parser.add_argument("--worker", choices=CONTENDERS[1:], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        loop = torch_loop if args.worker == "torch" else gradflow_loop
        json.dump(loop(args.epochs, args.seed), sys.stdout)
        return 0
    if args.epochs < 2:
        raise SystemExit("--epochs must be at least 2 (the first epoch is left out)")

    contenders = [c for c in CONTENDERS if c != "torch" or _torch_available()]
    load_before, started = os.getloadavg(), time.time()
    runs = {c: [] for c in contenders}
    for r in range(args.runs):
        order = contenders[r % len(contenders):] + contenders[:r % len(contenders)]
        for contender in order:
            runs[contender].append(_run(contender, args.epochs, r, args.threads))
        print(f"  run {r + 1}/{args.runs} done", file=sys.stderr)

    def per_run_medians(name):
        return [statistics.median(row["samples_per_s"] for row in rows[1:]) for rows in runs[name]]

    summary = {}
    for name in contenders:
        pooled = [row["samples_per_s"] for rows in runs[name] for row in rows[1:]]
        summary[name] = {"samples_per_s": statistics.median(pooled),
                         "final_test_acc": statistics.median(rows[-1]["test_acc"] for rows in runs[name])}
    ratios = {}
    if "torch" in contenders:
        theirs = per_run_medians("torch")
        for ours in ("gradflow train", "gradflow loop"):
            ratios[f"{ours}/torch"] = statistics.median(a / b for a, b in zip(per_run_medians(ours), theirs))

    threads = f"{args.threads} per pool" if args.threads else "library defaults"
    print(f"MLP 64-{HIDDEN}-10 ReLU, Adam, batch {BATCH}, digits ({args.runs} runs x {args.epochs} epochs, "
          f"threads: {threads}, load average {load_before[0]:.1f} at the start)")
    print("| contender | samples/s (median) | final test acc |")
    print("|---|---|---|")
    for name, row in summary.items():
        print(f"| {name} | {row['samples_per_s']:,.0f} | {row['final_test_acc']:.4f} |")
    for name, r in ratios.items():
        print(f"{name}: {r:.2f}x samples/s (goal >= 1.0x for gradflow train)")
    if "torch" not in contenders:
        print("torch is not installed (pip install torch==2.13.0, the CPU build): no comparison")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "when": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(time.time() - started, 1),
        "options": vars(args) | {"out": str(args.out)},
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
        "summary": summary, "ratios": ratios, "runs": runs}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
