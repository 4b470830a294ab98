"""One transformer encoder layer, forward + backward: gradflow (math and efficient attention) vs PyTorch.

    python -m benchmarks.transformer_layer                    # speed at (N, L) = (32, 64) and (8, 256), memory at L = 512
    python -m benchmarks.transformer_layer --threads 1 --rounds 15 --clock cpu

Speed: the same weights (PyTorch's state_dict loaded by name), float32, dropout 0, training mode;
the three contenders run in one process, interleaved round by round (each round: two steps of
each, the order rotating), and the median per-step time is reported with the ratio to PyTorch
(``--clock cpu``: process CPU time, all threads summed — steadier on a loaded machine).
Memory: what backward keeps per example at one sequence length — gradflow's tracker
(``retained_bytes``, activations only) and, for PyTorch, the tensors its autograd graph saves
(``saved_tensors_hooks``, counted once per storage, leaves — the batch and parameters — excluded).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _set_threads(threads):
    if threads:
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(threads)


def _layers(d, heads, ff):
    import torch

    import gradflow as gf

    torch.manual_seed(0)
    theirs = torch.nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True)
    ours = gf.nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


def speed(batch, length, d, heads, ff, rounds, clock=time.perf_counter):
    import numpy as np
    import torch

    import gradflow as gf
    import gradflow.nn.functional as F

    theirs, ours = _layers(d, heads, ff)
    x = np.random.default_rng(0).standard_normal((batch, length, d)).astype(np.float32)
    tx, gx = torch.from_numpy(x).requires_grad_(), gf.tensor(x, requires_grad=True)

    def torch_step():
        theirs.zero_grad()
        tx.grad = None
        theirs(tx).sum().backward()

    def gradflow_step(kernel):
        ours.zero_grad()
        gx.grad = None
        with F.sdpa_kernel(kernel):
            ours(gx).sum().backward()

    steps = {"torch": torch_step, "gradflow math": lambda: gradflow_step("math"),
             "gradflow efficient": lambda: gradflow_step("efficient")}
    for step in steps.values():  # warm-up
        step()
    times = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = clock()
            steps[name]()
            steps[name]()
            times[name].append((clock() - start) / 2)
    medians = {name: float(np.median(t)) for name, t in times.items()}
    return {"batch": batch, "length": length, "median_s": medians,
            "ratio_to_torch": {name: medians[name] / medians["torch"] for name in medians}}


def memory(length, d, heads, ff, batch=2):
    import numpy as np
    import torch

    import gradflow as gf
    import gradflow.nn.functional as F

    theirs, ours = _layers(d, heads, ff)
    x = np.random.default_rng(0).standard_normal((batch, length, d)).astype(np.float32)
    result = {}
    for kernel in ("math", "efficient"):
        with F.sdpa_kernel(kernel), gf.memory.track(ours) as t:
            out = ours(gf.tensor(x, requires_grad=True) * 1.0)
        result[f"gradflow {kernel}"] = t.retained_bytes / batch
        del out
    storages = {}
    leaves = {p.untyped_storage().data_ptr() for p in theirs.parameters()}
    tx = torch.from_numpy(x).requires_grad_()
    leaves.add(tx.untyped_storage().data_ptr())

    def pack(tensor):
        pointer = tensor.untyped_storage().data_ptr()
        if pointer not in leaves:
            storages[pointer] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = theirs(tx * 1.0)
    result["torch"] = sum(storages.values()) / batch
    del out
    return {"length": length, "bytes_per_example": result}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--d", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ff", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="BLAS/OpenMP threads (default 0: the libraries')")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument("--memory-length", type=int, default=512)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    _set_threads(args.threads)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    report = {"settings": vars(args),
              "speed": [speed(n, length, args.d, args.heads, args.ff, args.rounds,
                             time.process_time if args.clock == "cpu" else time.perf_counter) for n, length in ((32, 64), (8, 256))],
              "memory": memory(args.memory_length, args.d, args.heads, args.ff)}
    for row in report["speed"]:
        cells = ", ".join(f"{name} {1e3 * t:.1f} ms ({row['ratio_to_torch'][name]:.2f}x)"
                          for name, t in row["median_s"].items())
        print(f"N={row['batch']} L={row['length']}: {cells}")
    memory_row = report["memory"]
    print(f"retained per example at L={memory_row['length']}: "
          + ", ".join(f"{name} {b / 2**20:.2f} MiB" for name, b in memory_row["bytes_per_example"].items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
