"""Data-parallel training over several processes: MPI for CPU arrays, NCCL for GPU ones.

    mpiexec -n 2 python train.py              # one machine, two processes
    mpiexec -f hosts -n 16 python train.py    # a cluster (MPICH's hostfile); one rank per GPU

In the script, nothing changes for fit() (it calls init() itself under a launcher, wraps
the model in DataParallel, shards the data, averages the metrics, and lets rank 0 alone
print and write). A hand-written loop does:

    import kernelgrad as kg
    from kernelgrad import distributed as dist
    dist.init()                                   # rank and size from the launcher
    model = dist.DataParallel(build_model())      # rank 0's weights everywhere
    loader = dist.shard_loader(DataLoader(x, y, batch_size=64, shuffle=True, seed=0))
    for xb, yb in loader:
        opt.zero_grad(); loss_fn(model(xb), yb).backward(); opt.step()

Until init() is called (or when the job has one process) everything here is the identity:
rank 0 of a world of one, sums of one process's values, loaders unsharded.

A failure on one rank ends the job: after init(), an exception that reaches the top of
any rank prints its traceback with the rank and aborts every process (MPI_Abort), so no
rank waits forever in a collective for a peer that has died.
"""
import sys
import time

import numpy as np

from . import _backends
from ._backends import launched_size

_world = None  # the backend once init() has run
ABORT_GRACE_SECONDS = 0.5  # a failing rank's wait between printing and MPI_Abort

__all__ = ["init", "is_initialized", "rank", "world_size", "launched_size", "all_reduce",
           "broadcast", "barrier", "sum_floats", "shard_loader", "DataParallel"]


def init(backend="auto", device=None):
    """Join the job the MPI launcher started: rank and world size from the launcher.

    backend: "mpi" (NumPy arrays), "nccl" (CuPy arrays, one GPU per rank, set up over MPI)
    or "auto" ("nccl" when `device` is "cuda", else "mpi"). Calling it again returns the
    same world. Returns (rank, world_size).
    """
    global _world
    if backend not in ("auto", "mpi", "nccl"):
        raise ValueError(f"backend must be 'auto', 'mpi' or 'nccl', got {backend!r}")
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if _world is not None:
        if backend not in ("auto", _world.name):
            raise RuntimeError(f"distributed is already initialized with {_world.name!r}")
        return _world.rank, _world.size
    host = _backends.MPIBackend()
    chosen = host if (backend == "mpi" or (backend == "auto" and device != "cuda")) else \
        _backends.NCCLBackend(host)
    _install_abort_on_error(chosen)
    from ..nn import random
    random.set_stream_rank(chosen.rank)
    _world = chosen
    return _world.rank, _world.size


def is_initialized():
    return _world is not None


def rank():
    """This process's rank, from 0 (0 before init())."""
    return 0 if _world is None else _world.rank


def world_size():
    """The number of processes training together (1 before init())."""
    return 1 if _world is None else _world.size


def _array(x):
    if type(x) is np.ndarray and x.flags.c_contiguous:  # the common case, checked cheaply
        return x
    from ..nn.tensor import Tensor
    array = x.data if isinstance(x, Tensor) else x
    if not hasattr(array, "dtype") or not getattr(array.flags, "c_contiguous", False):
        raise TypeError("collectives take contiguous NumPy or CuPy arrays (or Tensors of "
                        f"them), got {type(x).__name__}")
    return array


def all_reduce(x, op="sum"):
    """x = the sum (op="sum") or mean (op="mean") of x over the ranks, in place; returns x."""
    array = _array(x)
    if op == "sum":
        if _world is not None:
            _world.allreduce(array)
    elif op == "mean":
        if _world is not None:
            _world.allreduce(array)
            array /= array.dtype.type(_world.size)
    else:
        raise ValueError(f"op must be 'sum' or 'mean', got {op!r}")
    return x


def broadcast(x, root=0):
    """x = rank root's x on every rank, in place; returns x."""
    array = _array(x)
    if not 0 <= root < world_size():
        raise ValueError(f"root {root} is not a rank of a world of {world_size()}")
    if _world is not None:
        _world.broadcast(array, root)
    return x


def barrier():
    """Wait until every rank has reached this call."""
    if _world is not None:
        _world.barrier()


def sum_floats(values):
    """Each value summed over the processes, the same on every rank (the values themselves
    in a world of one)."""
    if _world is None:
        return [float(v) for v in values]
    return _world.sum_floats(values)


def shard_loader(loader):
    """`loader`, or this process's shard of it when several processes train together."""
    if _world is None or _world.size == 1:
        return loader
    return loader.shard(rank(), world_size())


def _install_abort_on_error(world):
    """An exception that ends a rank's script ends the job: traceback, then MPI_Abort."""
    if world.size == 1:
        return
    previous = sys.excepthook

    def abort_on_error(kind, value, traceback):
        sys.stderr.write(f"kernelgrad.distributed: rank {world.rank} of {world.size} failed; "
                         "aborting every rank\n")
        previous(kind, value, traceback)
        sys.stderr.flush()
        sys.stdout.flush()
        # MPI_Abort has the launcher kill every rank, and output it has not yet forwarded
        # dies with them: on a loaded 2-core CI machine a job whose ranks all failed at
        # once ended with exit 1 and no message at all. A moment lets the message through.
        time.sleep(ABORT_GRACE_SECONDS)
        world.abort(1)
    sys.excepthook = abort_on_error


def _check_same_parameters(named):
    """Refuse a model whose parameters differ across the ranks, naming the first that does."""
    mine = [(name, tuple(p.shape), str(p.dtype)) for name, p in named]
    everyone = _world.gather_objects(mine)
    for other_rank, theirs in enumerate(everyone):
        if theirs == mine:
            continue
        for a, b in zip(mine, theirs):
            if a != b:
                raise ValueError(f"DataParallel: parameter {a[0]!r} is {a[1]} {a[2]} on rank "
                                 f"{rank()} but {b[0]!r} is {b[1]} {b[2]} on rank {other_rank}")
        raise ValueError(f"DataParallel: rank {rank()} has {len(mine)} parameters, rank "
                         f"{other_rank} has {len(theirs)}")


from .data_parallel import DataParallel  # noqa: E402  (it uses the functions above)
