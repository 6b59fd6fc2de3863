"""kernelgrad: hand-written Numba and CUDA kernels with a minimal autograd on top.

    import kernelgrad as kg
    model = kg.nn.Sequential(kg.nn.Linear(64, 128, activation="relu"), kg.nn.Linear(128, 10))
    loss = kg.nn.functional.cross_entropy(model(kg.Tensor(x)), labels)
    loss.backward()
"""
from . import kernels, nn  # noqa: I001  (nn before data and optim, which import nn.tensor)
from . import data, optim
from .devices import cuda_available
from .nn.random import initial_seed, manual_seed
from .nn.serialization import load, save
from .nn.tensor import Tensor, is_grad_enabled, no_grad, tensor

__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "no_grad", "is_grad_enabled", "manual_seed", "initial_seed",
           "save", "load", "cuda_available", "kernels", "nn", "optim", "data"]
