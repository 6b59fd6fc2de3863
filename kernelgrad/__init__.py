"""kernelgrad: hand-written Numba and CUDA kernels with a minimal autograd on top.

    import kernelgrad as kg
    model = kg.nn.Sequential(kg.nn.Linear(64, 128, activation="relu"), kg.nn.Linear(128, 10))
    loss = kg.nn.functional.cross_entropy(model(kg.Tensor(x)), labels)
    loss.backward()
"""
from . import kernels, nn  # noqa: I001  (nn before data and optim, which import nn.tensor)
from . import data, optim
from .devices import cuda_available
from .nn.random import get_rng_state, initial_seed, manual_seed, set_rng_state
from .nn.serialization import load, save
from .nn.tensor import (Tensor, enable_grad, inference_mode, is_grad_enabled, no_grad,
                        set_grad_enabled, tensor)

__version__ = "0.1.0"

__all__ = ["Tensor", "tensor", "no_grad", "enable_grad", "set_grad_enabled", "inference_mode",
           "is_grad_enabled", "manual_seed", "initial_seed", "get_rng_state", "set_rng_state",
           "save", "load", "cuda_available", "kernels", "nn", "optim", "data"]
