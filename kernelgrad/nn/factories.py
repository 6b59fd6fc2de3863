"""Making tensors, as torch's functions do: zeros, ones, full, randn, rand, arange, randint,
randperm, eye, linspace, empty, the *_like ones, from_numpy, from_dlpack, cat, stack,
argmax. Random ones draw from the library's seed (kernelgrad.manual_seed); float tensors
are float32 unless a dtype is given."""
import numpy as np

from ..devices import move, xp_of
from .random import init_generator
from .tensor import Tensor, _make, _needs


def _size(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size


def _new(array, dtype, requires_grad, device):
    array = array.astype(dtype or np.float32, copy=False)
    return Tensor(move(array, device), requires_grad=requires_grad)


def zeros(*size, dtype=None, requires_grad=False, device="cpu"):
    return _new(np.zeros(_size(size)), dtype, requires_grad, device)


def ones(*size, dtype=None, requires_grad=False, device="cpu"):
    return _new(np.ones(_size(size)), dtype, requires_grad, device)


def full(size, fill_value, dtype=None, requires_grad=False, device="cpu"):
    return _new(np.full(_size((size,)), fill_value), dtype, requires_grad, device)


def zeros_like(t, dtype=None, requires_grad=False):
    return _new(np.zeros(t.shape), dtype or t.dtype, requires_grad, t.device)


def ones_like(t, dtype=None, requires_grad=False):
    return _new(np.ones(t.shape), dtype or t.dtype, requires_grad, t.device)


def randn(*size, dtype=None, requires_grad=False, device="cpu"):
    return _new(init_generator().standard_normal(_size(size)), dtype, requires_grad, device)


def rand(*size, dtype=None, requires_grad=False, device="cpu"):
    return _new(init_generator().random(_size(size)), dtype, requires_grad, device)


def randint(low, high=None, size=None, dtype=None, device="cpu"):
    """Integers in [low, high) (randint(high, size) from 0), int64 unless dtype is given."""
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint needs a size, e.g. randint(10, (3,))")
    values = init_generator().integers(low, high, _size((size,)))
    return _new(values, dtype or np.int64, False, device)


def randperm(n, dtype=None, device="cpu"):
    """0 .. n-1 in a random order, int64 unless dtype is given."""
    return _new(init_generator().permutation(int(n)), dtype or np.int64, False, device)


def eye(n, m=None, dtype=None, requires_grad=False, device="cpu"):
    return _new(np.eye(n, m), dtype, requires_grad, device)


def linspace(start, end, steps, dtype=None, requires_grad=False, device="cpu"):
    return _new(np.linspace(start, end, steps), dtype, requires_grad, device)


# A tensor of the size: zeros, reproducible where torch's is uninitialized
empty = zeros


def full_like(t, fill_value, dtype=None, requires_grad=False):
    return full(t.shape, fill_value, dtype or t.dtype, requires_grad, t.device)


def randn_like(t, dtype=None, requires_grad=False):
    return randn(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad,
                 device=t.device)


def rand_like(t, dtype=None, requires_grad=False):
    return rand(t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad, device=t.device)


def arange(start, end=None, step=1, dtype=None, requires_grad=False, device="cpu"):
    """Integers unless an argument is a float or dtype is given (as torch.arange)."""
    start, end = (0, start) if end is None else (start, end)
    values = np.arange(start, end, step)
    if dtype is None:
        dtype = np.int64 if values.dtype.kind in "iu" else np.float32
    return _new(values, dtype, requires_grad, device)


def from_numpy(array):
    """A Tensor sharing `array`'s memory (its dtype kept)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy takes a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def from_dlpack(obj):
    """A Tensor sharing the memory of any DLPack producer: a torch tensor, a NumPy or CuPy
    array (on the GPU, a CuPy array)."""
    device_type, _ = obj.__dlpack_device__()
    if device_type == 1:  # kDLCPU
        return Tensor(np.from_dlpack(obj))
    import cupy
    return Tensor(cupy.from_dlpack(obj))


def cat(tensors, dim=0):
    """Tensors joined along an existing dimension; the gradient is split back."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("cat needs at least one tensor")
    xp = xp_of(tensors[0].data)
    out = xp.concatenate([t.data for t in tensors], axis=dim)
    cuts = np.cumsum([t.shape[dim] for t in tensors])[:-1]

    def backward(g):
        return tuple(xp.split(g, cuts, axis=dim))
    return _make(out, tuple(tensors), backward)


def stack(tensors, dim=0):
    """Tensors of one shape joined along a new dimension."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    xp = xp_of(tensors[0].data)
    out = xp.stack([t.data for t in tensors], axis=dim)

    def backward(g):
        return tuple(xp.squeeze(part, axis=dim) for part in
                     xp.split(g, len(tensors), axis=dim))
    return _make(out, tuple(tensors), backward)


def argmax(t, dim=None, keepdim=False):
    return (t if isinstance(t, Tensor) else Tensor(t)).argmax(dim, keepdim)


def where(condition, x, y):
    """x where condition holds, else y; gradients flow to both sides."""
    c = condition.data if isinstance(condition, Tensor) else condition
    xd = x.data if isinstance(x, Tensor) else x
    yd = y.data if isinstance(y, Tensor) else y
    xp = xp_of(c)
    out = xp.where(c, xd, yd)

    def backward(g):
        from .tensor import _unbroadcast
        return (_unbroadcast(xp.where(c, g, 0), np.shape(xd)) if _needs(x) else None,
                _unbroadcast(xp.where(c, 0, g), np.shape(yd)) if _needs(y) else None)
    return _make(out, (x, y), backward)
