"""The two transports: MPI (mpi4py) for NumPy arrays, NCCL (cupy.cuda.nccl) for CuPy ones.

Each backend offers the same few collectives on whole arrays, in place: iallreduce
(non-blocking, returns a handle to wait on), allreduce, broadcast, barrier, plus the
small host-side helpers fit needs (sums of Python floats, an object from rank 0, every
rank's object). NCCL moves the device arrays; its set-up and the host-side helpers go
over MPI, which launched the processes either way.
"""
import ctypes
import os

import numpy as np

# How each MPI launcher tells a process its rank and the job's size.
LAUNCHER_VARIABLES = (("PMI_RANK", "PMI_SIZE"),                     # MPICH (hydra)
                      ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),  # Open MPI
                      ("PMIX_RANK", "PMIX_SIZE"), ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"))
LOCAL_RANK_VARIABLES = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCAL_RANK")


def launched_size():
    """The number of processes an MPI launcher started this job with (1 without one)."""
    for _, size in LAUNCHER_VARIABLES:
        if os.environ.get(size, "").isdigit():
            return int(os.environ[size])
    return 1


def local_rank(rank, size):
    """This process's index among those on its machine (for choosing its GPU)."""
    for name in LOCAL_RANK_VARIABLES:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return rank


def mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError("kernelgrad.distributed needs mpi4py and an MPI library: "
                          "pip install 'kernelgrad[distributed]' (mpi4py with the mpich "
                          "wheel)") from None
    return MPI


class _Done:
    """The handle of a collective that has already completed."""

    def wait(self):
        pass

    def progress(self):
        pass


class MPIBackend:
    """Collectives over an mpi4py communicator (COMM_WORLD unless given)."""

    name = "mpi"

    def __init__(self, comm=None):
        MPI = mpi()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self._in_place, self._sum = MPI.IN_PLACE, MPI.SUM

    def iallreduce(self, array):
        """Start array = sum over ranks of array (in place); returns a handle to wait()."""
        if self.size == 1:
            return _Done()
        return _MPIRequest(self.comm.Iallreduce(self._in_place, array, self._sum))

    def allreduce(self, array):
        if self.size > 1:
            self.comm.Allreduce(self._in_place, array, self._sum)
        return array

    def broadcast(self, array, root=0):
        if self.size > 1:
            self.comm.Bcast(array, root=root)
        return array

    def barrier(self):
        self.comm.Barrier()

    def sum_floats(self, values):
        """Each value summed over the ranks, the same float on every rank (rank 0's sum is
        broadcast, so no rank can round differently)."""
        totals = self.allreduce(np.array(values, dtype=np.float64))
        return [float(v) for v in self.broadcast(totals)]

    def broadcast_object(self, value, root=0):
        return self.comm.bcast(value, root=root)

    def gather_objects(self, value):
        """[value of rank 0, value of rank 1, ...] on every rank."""
        return self.comm.allgather(value)

    def abort(self, code=1):
        self.comm.Abort(code)


class _MPIRequest:
    def __init__(self, request):
        self.request, self.done = request, False

    def wait(self):
        if not self.done:
            self.request.Wait()

    def progress(self):
        """Let MPI move the collective along (MPICH advances a non-blocking collective
        only inside MPI calls: without these, it would all happen at wait())."""
        if not self.done:
            self.done = self.request.Test()


# NCCL's ncclDataType_t and ncclRedOp_t values (nccl.h; CuPy's nccl.NCCL_* are the same)
NCCL_TYPES = {np.dtype(np.int32): 2, np.dtype(np.int64): 4, np.dtype(np.float16): 6,
              np.dtype(np.float32): 7, np.dtype(np.float64): 8}
NCCL_SUM = 0


class NCCLBackend:
    """Collectives on CuPy arrays through NCCL, one communicator per job, each rank on the
    GPU of its local rank; the host-side helpers and the set-up go over `host` (MPI).

    Not yet run on GPUs: the tests drive it with a fake communicator (tests/distributed).
    """

    name = "nccl"

    def __init__(self, host, communicator=None, stream=None):
        self.host = host
        self.rank, self.size = host.rank, host.size
        if communicator is None:
            import cupy
            from cupy.cuda import nccl
            cupy.cuda.Device(local_rank(self.rank, self.size)
                             % cupy.cuda.runtime.getDeviceCount()).use()
            uid = host.broadcast_object(nccl.get_unique_id() if self.rank == 0 else None)
            communicator = nccl.NcclCommunicator(self.size, uid, self.rank)
            # a stream of its own: the all-reduces run beside the rest of backward
            stream = cupy.cuda.Stream(non_blocking=True)
        self.comm, self.stream = communicator, stream

    @staticmethod
    def _types(array):
        dtype = np.dtype(array.dtype)
        if dtype not in NCCL_TYPES:
            raise TypeError(f"NCCL all-reduces {sorted(map(str, NCCL_TYPES))}, got {dtype}")
        return NCCL_TYPES[dtype], NCCL_SUM

    def iallreduce(self, array):
        """Queue the all-reduce on the communication stream once the work queued so far on
        the current stream (the gradient's kernels) is done; the handle's wait() makes the
        current stream wait for it, on the device: the host never blocks."""
        kind, total = self._types(array)
        _stream_waits_for(self.stream, _current_stream(self.stream))
        self.comm.allReduce(_pointer(array), _pointer(array), array.size, kind, total,
                            _stream_pointer(self.stream))
        return _StreamWait(self.stream)

    def allreduce(self, array):
        self.iallreduce(array).wait()
        return array

    def broadcast(self, array, root=0):
        kind, _ = self._types(array)
        _stream_waits_for(self.stream, _current_stream(self.stream))
        self.comm.bcast(_pointer(array), array.size, kind, root, _stream_pointer(self.stream))
        _StreamWait(self.stream).wait()
        return array

    def barrier(self):
        self.host.barrier()

    def sum_floats(self, values):
        return self.host.sum_floats(values)

    def broadcast_object(self, value, root=0):
        return self.host.broadcast_object(value, root)

    def gather_objects(self, value):
        return self.host.gather_objects(value)

    def abort(self, code=1):
        self.host.abort(code)


def _pointer(array):
    """The device (or, for a NumPy array, host) address of array's first element."""
    if isinstance(array, np.ndarray):
        return array.ctypes.data_as(ctypes.c_void_p).value
    return array.data.ptr


def _stream_pointer(stream):
    return 0 if stream is None else stream.ptr


def _current_stream(stream):
    if stream is None:  # a fake communicator's: no device
        return None
    import cupy
    return cupy.cuda.get_current_stream()


def _stream_waits_for(waiting, other):
    """`waiting` runs nothing more until the work queued on `other` so far is done."""
    if waiting is None or other is None:
        return
    import cupy
    event = cupy.cuda.Event(disable_timing=True)
    event.record(other)
    waiting.wait_event(event)


class _StreamWait:
    """Makes the current stream wait, on the device, for what `stream` has queued."""

    def __init__(self, stream):
        self.stream = stream
        if stream is not None:
            import cupy
            self.event = cupy.cuda.Event(disable_timing=True)
            self.event.record(stream)

    def wait(self):
        if self.stream is not None:
            _current_stream(self.stream).wait_event(self.event)

    def progress(self):
        pass  # NCCL progresses on the GPU by itself
