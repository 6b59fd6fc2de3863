"""Every CUDA source compiles with NVRTC for sm_80 and sm_90, with no GPU and no driver
(cuda-bindings + nvidia-cuda-nvrtc-cu12 from the dev extra); a compile error, a warning
or a kernel the launchers call but the source lacks fails here, and so fails CI.
Where nvcc is installed, its resource report must show no spills and no stack."""
import shutil

import pytest

from kernelgrad.kernels.cuda import _module
from tools import cuda_compile_check as compile_check


@pytest.mark.parametrize("arch", compile_check.ARCHITECTURES)
@pytest.mark.parametrize("name", _module.SOURCES)
def test_source_compiles_with_nvrtc(name, arch):
    ptx = compile_check.compile_nvrtc(name, arch)
    assert f".target {arch}" in ptx


def test_a_compile_error_is_reported(monkeypatch):
    real = _module.source
    monkeypatch.setattr(_module, "source", lambda name: real(name) + "\nthis is not C++;\n")
    with pytest.raises(compile_check.CompileError, match="does not compile"):
        compile_check.compile_nvrtc("activations", "sm_90")


def test_a_missing_kernel_is_reported(monkeypatch):
    monkeypatch.setitem(_module.KERNELS, "dropout", ("dropout", "no_such_kernel"))
    with pytest.raises(compile_check.CompileError, match="no_such_kernel"):
        compile_check.compile_nvrtc("dropout", "sm_80")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed here")
@pytest.mark.parametrize("name", _module.SOURCES)
def test_no_spills(name):
    usage = compile_check.resource_usage(name)
    assert set(usage) == set(_module.KERNELS[name])
    for kernel, (regs, stack, spill_stores, spill_loads, _) in usage.items():
        assert (stack, spill_stores, spill_loads) == (0, 0, 0), f"{kernel} spills"
        # 256-thread blocks: at most 128 registers keeps two blocks per SM
        assert regs <= 128, f"{kernel} uses {regs} registers"
