"""Run kernelgrad's CUDA C on the CPU, so its kernels are tested where no GPU is.

The CUDA sources are compiled by g++ against emu.h (CUDA's types, intrinsics and thread
model for the CPU) and runtime.cpp (each CUDA thread a fiber, the blocks of a grid in
turn, barriers and warp shuffles that fail loudly when some thread can never reach them).
ptx.cuh's inline PTX is swapped for ptx.h, C++ versions of the same instructions, so
matmul_tc's tiling, pipeline and fragment indexing run too; only ptx.cuh's asm text
itself needs a GPU to be checked.

`cupy_shim` puts a module named cupy in front of the launchers (arrays are NumPy arrays in
guarded memory: a page that faults on any access on each side), so the real launchers,
argument packing included, drive the emulated kernels. Set KERNELGRAD_CUDA_EMULATOR=1 and
`pytest -m gpu tests` runs the GPU tests this way; test_emulator.py beside this file does so,
twice: arrays flush against the guard after them, cp.async copies landing at once,
threads first to last; then guards before, copies landing at their wait, last to first.

What it cannot show: speed, the GPU's own rounding (expf and the like come from the C
library), races between blocks (they run one at a time), and races between the threads
of a block beyond what the two thread orders and two cp.async modes expose.
"""
import ctypes
import functools
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

from kernelgrad.kernels._autotune import cache_dir

HERE = pathlib.Path(__file__).resolve().parent
# Warnings are errors: g++'s -Wall -Wextra reads the CUDA C too (unused or uninitialized
# variables, sign mixing), a lint nvcc does not give. Unknown pragmas: #pragma unroll.
CXX_FLAGS = ("-std=c++17", "-O1", "-g", "-fPIC", "-shared", "-fno-strict-aliasing",
             "-U_FORTIFY_SOURCE", "-Wall", "-Wextra", "-Werror", "-Wno-unknown-pragmas",
             "-Wno-unused-parameter")
# "1": compile with fused multiply-adds contracted, as NVCC does by default (-fmad=true);
# the default build rounds every product, as the CPU kernels do
FMA_VARIABLE = "KERNELGRAD_CUDA_EMULATOR_FMA"
ERROR_BYTES = 1024
# "early": each cp.async lands when issued; "late": only when a wait_group retires it
COPIES_VARIABLE = "KERNELGRAD_CUDA_EMULATOR_COPIES"
# "forward" or "reverse": the order a block's threads run in between barriers
ORDER_VARIABLE = "KERNELGRAD_CUDA_EMULATOR_ORDER"


class EmulatorError(RuntimeError):
    """A launch the emulator refused or stopped: bad arguments, a barrier some thread never
    reaches, a memory fault."""


def compiler():
    return shutil.which(os.environ.get("CXX", "g++"))


def available():
    return compiler() is not None


def _cache_dir():
    """Beside the GEMM choices, in kernelgrad's cache folder."""
    path = pathlib.Path(cache_dir()) / "cuda-emulator"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _flags():
    if os.environ.get(FMA_VARIABLE) == "1":
        return CXX_FLAGS + ("-ffp-contract=fast",) + (("-mfma",) if os.uname().machine in (
            "x86_64", "AMD64") else ())
    return CXX_FLAGS + ("-ffp-contract=off",)


def _build(name, text, link=()):
    """The shared library compiled from C++ `text`, cached by its hash."""
    flags = _flags() + tuple(link)
    header = (HERE / "emu.h").read_text()
    key = hashlib.sha256("\0".join((text, header) + flags).encode()).hexdigest()[:20]
    out = _cache_dir() / f"{name}-{key}.so"
    if not out.exists():
        if not available():
            raise EmulatorError("the CUDA emulator needs a C++ compiler (g++, or $CXX)")
        with tempfile.TemporaryDirectory() as tmp:
            src = pathlib.Path(tmp) / f"{name}.cpp"
            src.write_text(text)
            built = pathlib.Path(tmp) / "out.so"
            run = subprocess.run([compiler(), *_flags(), f"-I{HERE}", "-o", str(built),
                                  str(src), *link], capture_output=True, text=True)
            if run.returncode:
                raise EmulatorError(f"g++ could not compile {name} for the emulator:\n"
                                    f"{run.stderr[-4000:]}")
            os.replace(built, out)  # atomic: a parallel build never sees half a file
    return out


@functools.lru_cache(maxsize=None)
def runtime():
    return ctypes.CDLL(str(_build("runtime", (HERE / "runtime.cpp").read_text())),
                       mode=ctypes.RTLD_GLOBAL)


def _register_shared(declaration):
    """A __shared__ declaration, followed by the registration of each variable it makes."""
    text = declaration.group(0)
    declarators = re.sub(r"__shared__|__align__\(\d+\)", "", text).strip().rstrip(";")
    depth, parts, part = 0, [], ""
    for ch in declarators:  # split at the commas outside brackets
        depth += (ch in "[(") - (ch in "])")
        if ch == "," and depth == 0:
            parts, part = parts + [part], ""
        else:
            part += ch
    names = [re.findall(r"\w+", p.split("[")[0].split("=")[0])[-1] for p in parts + [part]]
    return text + "".join(f" emu::shared_region(&{n}, sizeof({n}));" for n in names)


def translate(cuda_source, kernel_names):
    """`cuda_source` (as _module.source pastes it) as C++ for g++: emu.h first, ptx.cuh's
    part replaced by ptx.h, dynamic shared memory from the runtime, static shared memory
    registered where it is declared, and one extern "C" launcher per kernel."""
    text = re.sub(r"// begin ptx\.cuh\n.*?// end ptx\.cuh",
                  lambda _: (HERE / "ptx.h").read_text(), cuda_source, flags=re.S)
    text = re.sub(r"extern __shared__ (?:__align__\(\d+\) )?(\w+) (\w+)\[\];",
                  r"\1* \2 = static_cast<\1*>(emu::dynamic_shared());", text)
    text = re.sub(r"^\s*__shared__[^;]*;", _register_shared, text, flags=re.M)
    launchers = "".join(
        f'\nextern "C" int emu_launch_{k}(const unsigned* grid, const unsigned* block, '
        f"size_t shared, void** args, const size_t* sizes, int count, char* error, "
        f"size_t error_len, unsigned long long* fault) {{\n"
        f"    return emu::launch({k}, grid, block, shared, args, sizes, count, error, "
        f"error_len, fault);\n}}\n" for k in kernel_names)
    return '#include "emu.h"\n' + text + launchers


# CUDA's launch limits (every architecture since sm_30): a launch past them fails with
# cudaErrorInvalidConfiguration, so the emulator refuses it too.
GRID_LIMITS = (2 ** 31 - 1, 65535, 65535)
BLOCK_LIMITS = (1024, 1024, 64)
MAX_BLOCK_THREADS = 1024


def check_launch_shape(kernel, grid, block):
    for what, dims, limits in (("grid", grid, GRID_LIMITS), ("block", block, BLOCK_LIMITS)):
        if any(not 1 <= d <= limit for d, limit in zip(dims, limits)):
            raise EmulatorError(f"{kernel}: {what} {dims} is outside CUDA's limits "
                                f"(1 to {limits} per dimension)")
    if block[0] * block[1] * block[2] > MAX_BLOCK_THREADS:
        raise EmulatorError(f"{kernel}: block {block} has more than {MAX_BLOCK_THREADS} "
                            "threads")


class Module:
    """One CUDA source compiled for the emulator; launch(kernel, grid, block, args)."""

    def __init__(self, cuda_source, kernel_names):
        rt = runtime()
        text = translate(cuda_source, kernel_names)
        path = _build("module", text, link=(rt._name,))
        self.lib = ctypes.CDLL(str(path))
        self.kernel_names = tuple(kernel_names)
        try:
            self.late_copies = ctypes.c_int.in_dll(self.lib, "emu_copies_land_late")
        except ValueError:
            self.late_copies = None  # this source has no cp.async

    def launch(self, kernel, grid, block, values, shared_mem=0, describe=None):
        """values: the arguments as ctypes values, as cuLaunchKernel takes them (a pointer
        as c_void_p, a scalar as its bytes); describe(address) places a faulting address
        for the message."""
        runtime().emu_set_reverse_order(os.environ.get(ORDER_VARIABLE) == "reverse")
        if self.late_copies is not None:
            self.late_copies.value = os.environ.get(COPIES_VARIABLE, "early") == "late"
        if kernel not in self.kernel_names:
            raise EmulatorError(f"no kernel named {kernel!r} in this module")
        grid, block = (tuple(grid) + (1, 1))[:3], (tuple(block) + (1, 1))[:3]
        check_launch_shape(kernel, grid, block)
        fn = getattr(self.lib, f"emu_launch_{kernel}")
        grid3 = (ctypes.c_uint * 3)(*grid)
        block3 = (ctypes.c_uint * 3)(*block)
        pointers = (ctypes.c_void_p * max(1, len(values)))(
            *[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in values])
        sizes = (ctypes.c_size_t * max(1, len(values)))(*[ctypes.sizeof(v) for v in values])
        error = ctypes.create_string_buffer(ERROR_BYTES)
        fault = ctypes.c_ulonglong(0)
        status = fn(grid3, block3, ctypes.c_size_t(shared_mem), pointers, sizes,
                    ctypes.c_int(len(values)), error, ctypes.c_size_t(ERROR_BYTES),
                    ctypes.byref(fault))
        if status:
            message = f"{kernel}: {error.value.decode()}"
            if fault.value and describe:
                message += f" at {describe(fault.value)}"
            raise EmulatorError(message)

