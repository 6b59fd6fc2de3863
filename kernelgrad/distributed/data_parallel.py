"""DataParallel: one model replica per rank, gradients averaged during backward.

As PyTorch's DistributedDataParallel does it:
- construction broadcasts rank 0's parameters (every rank starts from the same weights)
  after checking that every rank has the same parameter names, shapes and dtypes;
- the parameters are grouped into buckets of about `bucket_mb` megabytes, in reverse order
  of registration (the order backward produces their gradients); when the last gradient of
  a bucket has been accumulated, the bucket is flattened and its all-reduce started
  without waiting, so the communication runs while backward computes the rest;
- when the last bucket has started, backward waits for all of them and writes the averages
  back into each .grad: the optimizer step that follows sees the averaged gradients;
- `with model.no_sync():` backward accumulates locally without communicating (gradient
  accumulation); the first backward outside it averages the accumulated sums;
- only a backward through DataParallel's own forward communicates (not one through the
  bare module).
The model has no buffers to broadcast (kernelgrad's layers keep all their state in
parameters).
"""
import contextlib
import time

from ..devices import xp_of
from ..nn.modules import Module
from ..nn.tensor import is_grad_enabled

DEFAULT_BUCKET_MB = 4.0


class _Bucket:
    def __init__(self, params, xp):
        self.params = params  # [(name, parameter)]
        sizes = [p.data.size for _, p in params]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        self.buffer = xp.empty(self.offsets[-1], dtype=params[0][1].data.dtype)
        self.ready = 0
        self.handle = None


class DataParallel(Module):
    """Wrap `module` for data-parallel training across the job's ranks (see the module
    docstring). Call it as the module itself; its parameters are the module's."""

    def __init__(self, module, bucket_mb=DEFAULT_BUCKET_MB, broadcast_parameters=True):
        from .. import distributed
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DataParallel wraps a kernelgrad Module, got {type(module).__name__}")
        if isinstance(bucket_mb, bool) or not isinstance(bucket_mb, (int, float)) or \
                not bucket_mb > 0:
            raise ValueError(f"bucket_mb must be a positive number, got {bucket_mb!r}")
        params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        if not distributed.is_initialized():
            device = params[0][1].device if params else "cpu"
            distributed.init(device=device)
        self.module = module
        self.world = distributed._world
        distributed._check_same_parameters(params)
        if broadcast_parameters:
            for _, p in params:
                self.world.broadcast(p.data, 0)
        self._buckets = self._make_buckets(params, bucket_mb * 1e6)
        self._sync, self._expect = True, False
        self.last_wait_s = 0.0
        self._launched = 0
        self._handles = [p.register_post_accumulate_grad_hook(self._hook(b))
                         for b in self._buckets for _, p in b.params]

    @staticmethod
    def _make_buckets(params, limit):
        buckets, current, size = [], [], 0
        for name, p in reversed(params):
            if current and (size + p.data.nbytes > limit or
                            p.data.dtype != current[0][1].data.dtype or
                            p.device != current[0][1].device):
                buckets.append(_Bucket(current, xp_of(current[0][1].data)))
                current, size = [], 0
            current.append((name, p))
            size += p.data.nbytes
        if current:
            buckets.append(_Bucket(current, xp_of(current[0][1].data)))
        return buckets

    @property
    def bucket_names(self):
        """The parameter names in each bucket, in the order their all-reduces start."""
        return [[name for name, _ in b.params] for b in self._buckets]

    def forward(self, *args, **kwargs):
        # Only a backward through this forward communicates: one through the bare module
        # (an evaluation, a check) leaves the gradients local, as PyTorch's DDP does.
        if is_grad_enabled():
            if self._sync:
                self._check_last_backward()
            self._expect = self._sync
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside accumulate gradients locally, without communicating."""
        previous, self._sync = self._sync, False
        try:
            yield
        finally:
            self._sync = previous

    def _check_last_backward(self):
        started = [b for b in self._buckets if b.ready]
        if started and self._launched < len(self._buckets):
            missing = [name for b in self._buckets for name, p in b.params
                       if b.ready < len(b.params) and p.grad is None]
            self._reset()
            raise RuntimeError("DataParallel: the last backward gave no gradient to "
                               f"{missing or 'some parameters'}; every parameter it averages "
                               "must take part in the loss (or have requires_grad=False)")
        self._reset()

    def _reset(self):
        for b in self._buckets:
            b.ready, b.handle = 0, None
        self._launched, self._expect = 0, False

    def _hook(self, bucket):
        def on_gradient(_param):
            if not (self._sync and self._expect):
                return
            for b in self._buckets:  # the all-reduces already started move on meanwhile
                if b.handle is not None:
                    b.handle.progress()
            bucket.ready += 1
            if bucket.ready == len(bucket.params):
                self._start(bucket)
        return on_gradient

    def _start(self, bucket):
        for (_, p), lo, hi in zip(bucket.params, bucket.offsets, bucket.offsets[1:]):
            bucket.buffer[lo:hi] = p.grad.data.reshape(-1)
        bucket.handle = self.world.iallreduce(bucket.buffer)
        self._launched += 1
        if self._launched == len(self._buckets):
            self._finish()

    def _finish(self):
        scale = 1.0 / self.world.size
        start = time.perf_counter()
        for b in self._buckets:
            b.handle.wait()
        # what backward waited for: the communication the overlap did not hide
        self.last_wait_s = time.perf_counter() - start
        for b in self._buckets:
            b.buffer *= b.buffer.dtype.type(scale)
            for (_, p), lo, hi in zip(b.params, b.offsets, b.offsets[1:]):
                p.grad.data[...] = b.buffer[lo:hi].reshape(p.data.shape)
        self._reset()

    def extra_repr(self):
        return (f"world_size={self.world.size}, buckets={len(self._buckets)} "
                f"({', '.join(str(len(b.params)) for b in self._buckets)} parameters)")
