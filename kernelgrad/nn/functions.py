"""torch's top-level functions of a tensor: torch.sigmoid(x), torch.sum(x, dim=1),
torch.mm(a, b) ... are the Tensor methods of the same names (the gradient included).
(The factories, randint, eye, full_like ..., are in factories.py.)"""
import numpy as np

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


__all__ = list(METHODS) + ["is_tensor", "allclose"]
