"""torch's top-level functions: torch.sigmoid(x), torch.sum(x, dim=1), torch.mm(a, b) ...
are the Tensor methods of the same names (the gradient included), and the factories
torch has beside zeros and randn: randint, randperm, eye, linspace, empty, full_like,
randn_like, rand_like. Random ones draw from the library's seed (kernelgrad.manual_seed)."""
import numpy as np

from .factories import _new, _size
from .random import init_generator
from .tensor import Tensor, _data, _tensor

# names whose function is input.<name>(*args, **kwargs)
METHODS = ("abs", "sqrt", "clamp", "clip", "relu", "sigmoid", "tanh", "softmax",
           "log_softmax", "sum", "mean", "max", "min", "argmin", "var", "std", "flatten",
           "squeeze", "unsqueeze", "reshape", "transpose", "t", "permute", "numel", "square",
           "pow", "add", "sub", "mul", "div", "mm", "equal", "clone", "detach")


def _function(name):
    def function(input, *args, **kwargs):
        if name in ("max", "min") and args and isinstance(args[0], (Tensor, np.ndarray)):
            # torch.max(a, b) is elementwise: not this reduction
            raise TypeError(f"{name}(a, b) of two tensors is not supported; use "
                            f"kg.where(a {'>=' if name == 'max' else '<='} b, a, b)")
        return getattr(_tensor(input), name)(*args, **kwargs)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"input.{name}(...) (torch.{name})."
    return function


globals().update({name: _function(name) for name in METHODS})


def is_tensor(obj):
    return isinstance(obj, Tensor)


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|input - other| <= atol + rtol |other| everywhere (torch.allclose)."""
    return bool(np.allclose(np.asarray(_data(input)), np.asarray(_data(other)), rtol=rtol,
                            atol=atol, equal_nan=equal_nan))


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


def empty(*size, dtype=None, requires_grad=False, device="cpu"):
    """A tensor of the size (zeros: reproducible where torch's is uninitialized)."""
    return _new(np.zeros(_size(size)), dtype, requires_grad, device)


def full_like(input, fill_value, dtype=None, requires_grad=False):
    input = _tensor(input)
    return _new(np.full(input.shape, fill_value), dtype or input.dtype, requires_grad,
                input.device)


def randn_like(input, dtype=None, requires_grad=False):
    input = _tensor(input)
    return _new(init_generator().standard_normal(input.shape), dtype or input.dtype,
                requires_grad, input.device)


def rand_like(input, dtype=None, requires_grad=False):
    input = _tensor(input)
    return _new(init_generator().random(input.shape), dtype or input.dtype, requires_grad,
                input.device)


__all__ = list(METHODS) + ["is_tensor", "allclose", "randint", "randperm", "eye",
                           "linspace", "empty", "full_like", "randn_like", "rand_like"]
