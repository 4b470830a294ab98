"""Under mpirun -n 2: rank 1 fails in the way argv[1] names while rank 0 waits in an all_reduce.

raise: an uncaught exception (the excepthook must MPI_Abort); exit: the process dies without any
cleanup (the launcher must tear the job down); hang: rank 1 never joins (rank 0's collective
timeout must fire). In every case the job must end quickly with a non-zero status.
"""
import os
import sys
import time

import gradflow as gf
import gradflow.distributed as dist

MODE = sys.argv[1]
rank, world = dist.init(timeout=3)
dist.barrier()
if rank == 1:
    if MODE == "raise":
        raise ValueError("rank 1 failed on purpose")
    if MODE == "exit":
        os._exit(3)
    if MODE == "hang":
        time.sleep(120)
dist.all_reduce(gf.tensor([1.0, 2.0]))
print("rank 0 finished an all_reduce it should never have finished", flush=True)
