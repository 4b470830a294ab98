"""Data-parallel training over MPI (CPU processes, nodes) and NCCL (GPUs); launch with ``mpirun -n N``.

Install with ``pip install 'gradflow[distributed]'`` (mpi4py plus the MPICH wheel, which brings
``mpirun``). See README.md in this folder.
"""
from .data_parallel import (DataParallel, DistributedOptimizer, broadcast_parameters, check_in_sync,
                            parameters_digest, wrap_training)
from .errors import DistributedError, DistributedTimeoutError
from .memory import activation_memory_per_rank
from .packing import reduce_gradients
from .runtime import (all_reduce, all_reduce_array, barrier, broadcast, broadcast_array, init, is_initialized,
                      is_main_process, rank, world_size)
from .sharding import shard_batches, shard_indices

__all__ = ["init", "is_initialized", "rank", "world_size", "is_main_process", "barrier", "all_reduce",
           "broadcast", "all_reduce_array", "broadcast_array", "reduce_gradients", "DataParallel",
           "DistributedOptimizer", "wrap_training", "broadcast_parameters", "check_in_sync",
           "parameters_digest", "shard_indices", "shard_batches", "activation_memory_per_rank",
           "DistributedError", "DistributedTimeoutError"]
