"""kernelgrad: hand-written Numba and CUDA kernels with a minimal autograd on top."""
from . import kernels

__version__ = "0.1.0"
