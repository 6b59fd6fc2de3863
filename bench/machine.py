"""What the benchmark ran on, and whether the machine was quiet enough to time.

A results folder is named for the CPU (model, the vector width the kernels were compiled
for, cores) and the date; the report records the BLAS libraries loaded and their kernels
(threadpoolctl), and a busy check before timing prints a warning when other processes
hold a share of the cores.
"""
import os
import platform
import re
import time
from pathlib import Path

import numba
import numpy as np

import kernelgrad.kernels as K
from kernelgrad.kernels.cpu._load import other_load

BUSY_CORES = 0.25  # other processes' load above which the machine counts as busy


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def machine_name():
    """e.g. amd-epyc-znver3-32B-2c: CPU model, compile target and its vector bytes, cores."""
    info = K.cpu_info()
    return (f"{slug(cpu_model())}-{slug(info['target'])}-{info['vector_bytes']}B-"
            f"{os.cpu_count()}c")


def blas_libraries():
    """[(library, kernel architecture, threads)] for the BLAS libraries this process has
    loaded (OpenBLAS reports the kernel it picked, e.g. Haswell or SkylakeX)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [(f"{i.get('internal_api')} {i.get('version')}", i.get("architecture"),
             i.get("num_threads")) for i in threadpool_info() if i.get("user_api") == "blas"]


def busy_check(seconds=1.0):
    """(other processes' load in cores, warning line or None), measured while idle."""
    load = other_load(seconds)
    if load <= BUSY_CORES:
        return load, None
    return load, (f"WARNING: the machine is busy: other processes kept {load:.2f} of "
                  f"{os.cpu_count()} cores busy during the {seconds:.0f} s check; timings "
                  f"below are slower and noisier than this machine's own")


def describe():
    info = K.cpu_info()
    return {"cpu": cpu_model(), "machine": machine_name(), "cores": os.cpu_count(),
            "target": info["target"], "target_from": info["target_from"],
            "vector_bytes": info["vector_bytes"], "fma": info["fma"],
            "gemm_tile_float32": info["gemm_tile_float32"], "threads": numba.get_num_threads(),
            "numpy": np.__version__, "numba": numba.__version__,
            "blas": blas_libraries(), "date": time.strftime("%Y-%m-%d")}
