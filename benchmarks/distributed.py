"""Distributed benchmark: all-reduce bandwidth and data-parallel samples/s from 1 to 2 processes.

    python benchmarks/distributed.py                 # launches the mpirun runs itself
    python benchmarks/distributed.py --steps 100 --sizes 1e3,1e5,1e7

Bandwidth: gradflow's all_reduce (non-blocking + polled, for the timeout) against plain
mpi4py ``Allreduce`` on the same buffers, in the same run. "bus" bandwidth is the algorithm
bandwidth times 2(n-1)/n, the bytes each rank really moves in a ring all-reduce. Scaling: the
same MLP and global batch trained for the same steps by 1 and by 2 processes, each process
pinned to one BLAS thread so the comparison is process for process.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def bandwidth(sizes, repeats):
    from mpi4py import MPI

    import gradflow.distributed as dist

    comm = MPI.COMM_WORLD
    rows = []
    for count in sizes:
        buffer = np.ones(int(count), dtype=np.float32)
        timings = {}
        for name, call in (("gradflow", lambda: dist.all_reduce_array(buffer, "sum")),
                           ("mpi4py", lambda: comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM))):
            call()  # warm up: connection setup and first-touch of the buffer
            comm.Barrier()
            start = time.perf_counter()
            for _ in range(repeats):
                call()
            timings[name] = comm.allreduce((time.perf_counter() - start) / repeats, op=MPI.MAX)
        rows.append({"bytes": buffer.nbytes, **{f"{k}_s": v for k, v in timings.items()}})
    return rows


def train(steps, global_batch, hidden):
    import gradflow as gf
    import gradflow.distributed as dist
    from gradflow.nn.functional import cross_entropy, linear, relu

    rank, world = dist.rank(), dist.world_size()
    rng = np.random.default_rng(0)
    sizes = [64, hidden, hidden, 10]
    params = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        params += [gf.tensor(rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in), dtype="float32",
                             requires_grad=True), gf.tensor(np.zeros(fan_out), dtype="float32", requires_grad=True)]
    x_all = rng.standard_normal((global_batch * 4, 64)).astype(np.float32)
    y_all = rng.integers(0, 10, global_batch * 4)
    dist.broadcast_parameters(params)

    def step(index):
        h = gf.tensor(x_all[index])
        for i in range(0, len(params), 2):
            h = linear(h, params[i], params[i + 1])
            if i < len(params) - 2:
                h = relu(h)
        cross_entropy(h, gf.tensor(y_all[index])).backward()
        dist.reduce_gradients(params)
        for p in params:
            p.data -= np.float32(0.01) * p.grad.data
            p.grad = None

    batches = [piece for epoch in range(steps) for piece, _ in
               dist.shard_batches(len(x_all), global_batch, rank, world, seed=epoch)][:steps + 2]
    for index in batches[:2]:
        step(index)  # warm up
    dist.barrier()
    start = time.perf_counter()
    for index in batches[2:]:
        step(index)
    dist.barrier()
    return {"samples_per_s": steps * global_batch / (time.perf_counter() - start)}


def worker(args):
    import gradflow.distributed as dist

    rank, world = dist.init()
    result = {"world": world}
    if world > 1:
        result["bandwidth"] = bandwidth([float(s) for s in args.sizes.split(",")], args.repeats)
    result.update(train(args.steps, args.global_batch, args.hidden))
    if rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def launch(n, argv):
    beside = Path(sys.executable).parent / "mpirun"
    mpirun = str(beside) if beside.exists() else "mpirun"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               GRADFLOW_DEVICE="cpu", PYTHONPATH=str(ROOT))
    done = subprocess.run([mpirun, "-n", str(n), sys.executable, __file__, "--worker", *argv],
                          capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"mpirun -n {n} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[0][len("RESULT "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="256,65536,1048576,8388608", help="float32 counts per all-reduce")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--global-batch", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=512)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    argv = sys.argv[1:]
    load_before = os.getloadavg()
    one, two = launch(1, argv), launch(2, argv)
    load = ", ".join(f"{v:.1f}" for v in load_before)
    print(f"load average before the runs: {load} on {os.cpu_count()} cores (other work shares them)")
    print(f"all_reduce (sum, float32) over 2 processes, mean of {args.repeats} calls "
          "(for 2 ranks the bus bandwidth 2(n-1)/n x algorithm equals the algorithm bandwidth shown)")
    print(f"{'bytes':>12} {'gradflow ms':>12} {'mpi4py ms':>10} {'gradflow GB/s':>14} {'mpi4py GB/s':>12}")
    for row in two["bandwidth"]:
        gb = [row["bytes"] / row[k] / 1e9 for k in ("gradflow_s", "mpi4py_s")]
        print(f"{row['bytes']:>12} {row['gradflow_s'] * 1e3:>12.3f} {row['mpi4py_s'] * 1e3:>10.3f} "
              f"{gb[0]:>14.2f} {gb[1]:>12.2f}")
    print(f"\ndata-parallel MLP 64-{args.hidden}-{args.hidden}-10 float32, global batch {args.global_batch}, "
          f"{args.steps} steps, 1 BLAS thread per process ({os.cpu_count()} cores here)")
    print(f"  1 process : {one['samples_per_s']:10.0f} samples/s")
    print(f"  2 processes: {two['samples_per_s']:10.0f} samples/s  (x{two['samples_per_s'] / one['samples_per_s']:.2f})")


if __name__ == "__main__":
    main()
