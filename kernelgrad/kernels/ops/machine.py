"""What the kernels run on: cpu_info() for the CPU build, check_device_errors() for the GPU."""
import sys

import numba
import numpy as np

from ..cpu import _target
from ..cpu import matmul as cpu_matmul
from ._common import cuda


def cpu_info():
    """What the CPU kernels were compiled for: the target CPU and where its name came from,
    the vector width and register count, whether multiply-adds are fused, the lanes per
    vector and the GEMM's micro-tile (rows x columns of C in registers) per dtype, and the
    threads. Set NUMBA_CPU_NAME (and NUMBA_CPU_FEATURES) to compile for another target."""
    width, registers, fma = _target.vector_shape()
    info = {"target": _target.target_name(),
            "target_from": _target.target_from(),
            "vector_bytes": width, "vector_registers": registers, "fma": fma,
            "threads": numba.get_num_threads()}
    for dtype in (np.float32, np.float64):
        name = np.dtype(dtype).name
        info[f"lanes_{name}"] = width // np.dtype(dtype).itemsize
        info[f"gemm_tile_{name}"] = "x".join(map(str, cpu_matmul.micro_tile(dtype)))
    return info


def check_device_errors():
    """Raise if a CUDA kernel on the current device met bad data only it could see (a
    label outside [0, classes) in softmax_cross_entropy: that row came out NaN) since the
    last check. A synchronizing read; the nn API calls it where it reads a loss back. With
    CuPy never imported no CUDA kernel has run, so there is nothing to check."""
    if "cupy" not in sys.modules:
        return
    cuda("_module").check_errors()
