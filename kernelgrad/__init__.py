"""kernelgrad: hand-written Numba and CUDA kernels with a minimal autograd on top.

    import kernelgrad as kg
    from kernelgrad import nn
    model = nn.Sequential(nn.Linear(64, 128, activation="relu"), nn.Linear(128, 10))
    loss = nn.functional.cross_entropy(model(kg.tensor(x)), labels)
    loss.backward()

The top-level names follow torch's: Tensor, tensor, zeros, ones, randn, arange, cat, stack,
no_grad, manual_seed, save, load, float32 ...
"""
from . import kernels, nn  # noqa: I001  (nn before data and optim, which import nn.tensor)
from . import data, distributed, optim, utils
from . import cuda
from .devices import cuda_available, device
from .nn.dtypes import (
    bool,
    double,
    float,
    float16,
    float32,
    float64,
    int,
    int8,
    int16,
    int32,
    int64,
    long,
    uint8,
)
from .nn.factories import (
    arange,
    argmax,
    cat,
    empty,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    stack,
    where,
    zeros,
    zeros_like,
)
from .nn import functions
from .nn.capture import capture
from .nn.random import get_rng_state, initial_seed, manual_seed, set_rng_state
from .nn.serialization import load, save
from .nn.tensor import (
    Tensor,
    enable_grad,
    exp,
    inference_mode,
    is_grad_enabled,
    log,
    matmul,
    no_grad,
    set_grad_enabled,
    tensor,
)

__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "randn",
           "rand", "arange", "randint", "randperm", "eye", "linspace", "empty", "full_like",
           "randn_like", "rand_like", "from_numpy", "from_dlpack", "cat", "stack", "argmax",
           "where",
           "exp", "log", "matmul", "float32", "float64", "float16", "int64", "int32", "int16",
           "int8", "uint8", "bool", "long", "int", "float", "double", "no_grad",
           "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled",
           "capture", "manual_seed", "initial_seed", "get_rng_state", "set_rng_state",
           "save", "load",
           "cuda_available", "device", "cuda", "kernels", "nn", "optim", "data",
           "distributed", "utils"]

# torch.sigmoid(x), torch.sum(x, 1), torch.randint(...) ...: nn/functions.py
globals().update({name: getattr(functions, name) for name in functions.__all__})
__all__ += functions.__all__
