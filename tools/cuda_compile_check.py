"""Compile every CUDA source without a GPU: NVRTC for the architectures we target, and
nvcc's per-kernel register and spill counts.

    python tools/cuda_compile_check.py            # NVRTC, sm_80 and sm_90
    python tools/cuda_compile_check.py --resources  # nvcc --resource-usage

NVRTC comes from `cuda.bindings.nvrtc` (packages cuda-bindings and nvidia-cuda-nvrtc-cu12,
in the dev extra) or, failing that, CuPy's own binding; neither needs a driver. The tests
(tests/cuda/test_cuda_compile.py) run the NVRTC check in CI, so a compile error fails CI.
"""
import argparse
import re
import shutil
import subprocess
import sys
import tempfile

from kernelgrad.kernels.cuda import _module
from kernelgrad.kernels.cuda._module import KERNELS

ARCHITECTURES = ("sm_80", "sm_90")


class CompileError(RuntimeError):
    pass


def _nvrtc_cuda_bindings(src, name, arch):
    from cuda.bindings import nvrtc

    def ok(result):
        err, *rest = result
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise CompileError(f"{name}.cu ({arch}): NVRTC {err}")
        return rest[0] if len(rest) == 1 else rest

    prog = ok(nvrtc.nvrtcCreateProgram(src.encode(), f"{name}.cu".encode(), 0, [], []))
    options = [f"--gpu-architecture={arch}".encode()] + [o.encode() for o in _module.OPTIONS]
    err, = nvrtc.nvrtcCompileProgram(prog, len(options), options)
    size = ok(nvrtc.nvrtcGetProgramLogSize(prog))
    log = b" " * size
    ok(nvrtc.nvrtcGetProgramLog(prog, log))
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise CompileError(f"{name}.cu ({arch}) does not compile:\n"
                           f"{log.decode(errors='replace')}")
    size = ok(nvrtc.nvrtcGetPTXSize(prog))
    ptx = b" " * size
    ok(nvrtc.nvrtcGetPTX(prog, ptx))
    nvrtc.nvrtcDestroyProgram(prog)
    return ptx.decode(errors="replace"), log.decode(errors="replace").strip("\x00 \n")


def _nvrtc_cupy(src, name, arch):
    from cupy_backends.cuda.libs import nvrtc
    prog = nvrtc.createProgram(src, f"{name}.cu", [], [])
    try:
        nvrtc.compileProgram(prog, [f"--gpu-architecture={arch}", *_module.OPTIONS])
    except nvrtc.NVRTCError as e:
        raise CompileError(f"{name}.cu ({arch}) does not compile:\n{e}\n"
                           f"{nvrtc.getProgramLog(prog)}") from None
    return nvrtc.getPTX(prog), nvrtc.getProgramLog(prog)


def nvrtc_backend():
    """The NVRTC binding found here (a function), or None."""
    for fn, module in ((_nvrtc_cuda_bindings, "cuda.bindings.nvrtc"),
                       (_nvrtc_cupy, "cupy_backends.cuda.libs.nvrtc")):
        try:
            __import__(module)
            return fn
        except Exception:
            continue
    return None


def compile_nvrtc(name, arch):
    """PTX of source `name` for `arch`; raises CompileError (with NVRTC's log) on any error,
    and when a kernel the launcher calls is missing from the PTX."""
    backend = nvrtc_backend()
    if backend is None:
        raise RuntimeError("no NVRTC binding: pip install cuda-bindings nvidia-cuda-nvrtc-cu12")
    ptx, log = backend(_module.source(name), name, arch)
    if "warning" in log:
        raise CompileError(f"{name}.cu ({arch}) compiles with warnings:\n{log}")
    entries = set(re.findall(r"\.entry\s+(\w+)", ptx))
    missing = set(KERNELS[name]) - entries
    if missing:
        raise CompileError(f"{name}.cu ({arch}) lacks kernels {sorted(missing)}; "
                           f"it has {sorted(entries)}")
    return ptx


_NAME = re.compile(r"'(\w+)' for")
_SPILLS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_REGS = re.compile(r"Used (\d+) registers")
_SMEM = re.compile(r"(\d+) bytes smem")


def resource_usage(name, arch="sm_90"):
    """{kernel: (registers, stack, spill stores, spill loads, shared bytes)} from nvcc
    --resource-usage (ptxas's report)."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        raise RuntimeError("nvcc is not on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/{name}.cu"
        with open(path, "w") as f:
            f.write(_module.source(name))
        out = subprocess.run([nvcc, "-cubin", f"-arch={arch}", "--resource-usage",
                              "-std=c++17", "-o", f"{tmp}/{name}.cubin", path],
                             capture_output=True, text=True)
    text = out.stdout + out.stderr
    if out.returncode:
        raise CompileError(f"nvcc {name}.cu:\n{text}")
    usage = {}
    for block in text.split("ptxas info    : Compiling entry function")[1:]:
        name_m, spills, regs = _NAME.search(block), _SPILLS.search(block), _REGS.search(block)
        if not (name_m and spills and regs):
            raise CompileError(f"cannot read nvcc's resource report for {name}.cu:\n{block}")
        smem = _SMEM.search(block)
        kern, regs, smem = name_m.group(1), regs.group(1), smem.group(1) if smem else 0
        stack, spill_st, spill_ld = spills.groups()
        usage[kern] = (int(regs), int(stack), int(spill_st), int(spill_ld), int(smem))
    return usage


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", action="store_true",
                        help="print registers, stack and spills per kernel (nvcc, sm_90)")
    args = parser.parse_args(argv)
    if args.resources:
        print("| kernel | source | registers | stack (B) | spill stores / loads (B) | "
              "static shared (B) |")
        print("|---|---|---|---|---|---|")
        for name in _module.SOURCES:
            for kern, (regs, stack, st, ld, smem) in sorted(resource_usage(name).items()):
                print(f"| `{kern}` | {name}.cu | {regs} | {stack} | {st} / {ld} | {smem} |")
        return 0
    failed = 0
    for name in _module.SOURCES:
        for arch in ARCHITECTURES:
            try:
                compile_nvrtc(name, arch)
                print(f"ok    {name}.cu  {arch}")
            except CompileError as e:
                failed += 1
                print(f"FAIL  {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
