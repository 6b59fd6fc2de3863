"""The machine code target Numba compiles for, and the vectors it gives the kernels.

Numba compiles for the host CPU unless NUMBA_CPU_NAME / NUMBA_CPU_FEATURES name another
target (an older CPU than the one running, say, to test or to ship portable caches). The
kernels' vector width must follow that compile target, not the host: a kernel built for
`haswell` on an AVX-512 machine has 32-byte vectors. So the width is asked of LLVM itself:
a probe function adding two 64-byte float vectors is compiled for the target, and the
registers in its assembly (zmm, ymm, xmm or NEON's v) say the widest vector the target
has; an fma in it says whether the target fuses multiply-adds.
"""
import functools

import llvmlite.binding as ll
from numba.core import config
from numba.core.codegen import get_host_cpu_features

_PROBE = """
define <16 x float> @probe(<16 x float> %a, <16 x float> %b, <16 x float> %c) {
  %d = call <16 x float> @llvm.fma.v16f32(<16 x float> %a, <16 x float> %b, <16 x float> %c)
  ret <16 x float> %d
}
declare <16 x float> @llvm.fma.v16f32(<16 x float>, <16 x float>, <16 x float>)
"""


@functools.lru_cache(maxsize=None)
def _init_llvm():
    ll.initialize_native_target()
    ll.initialize_native_asmprinter()


def target_from():
    """Where the compile target comes from: "NUMBA_CPU_NAME" whenever that is set (an empty
    one included: Numba passes any name it was given to LLVM), else "host"."""
    return "host" if config.CPU_NAME is None else "NUMBA_CPU_NAME"


def target_name():
    """The CPU name Numba compiles for: NUMBA_CPU_NAME when set, else the host's. Set but
    empty, Numba hands LLVM an empty name, which is LLVM's generic CPU, not the host."""
    if target_from() == "host":
        return ll.get_host_cpu_name()
    return config.CPU_NAME or "generic"


def target_features():
    """The feature string Numba compiles with: NUMBA_CPU_FEATURES when set (an empty string
    means the named CPU's own features), else the host's."""
    return config.CPU_FEATURES if config.CPU_FEATURES is not None else get_host_cpu_features()


@functools.lru_cache(maxsize=None)
def _probe_assembly(name, features):
    _init_llvm()
    target = ll.Target.from_triple(ll.get_process_triple())
    machine = target.create_target_machine(cpu=name, features=features, opt=2)
    module = ll.parse_assembly(_PROBE)
    module.triple = machine.triple
    module.verify()
    return machine.emit_assembly(module)


@functools.lru_cache(maxsize=None)
def _vector_shape(name, features):
    """(vector bytes, vector registers, has fma) for a target."""
    asm = _probe_assembly(name, features)
    arch = ll.get_process_triple().split("-")[0]
    if arch in ("x86_64", "i686", "i386"):
        # LLVM keeps an explicit 512-bit vector whole wherever AVX-512 exists (a function
        # without a min-legal-vector-width attribute, as Numba's, may use all of it), and
        # AVX-512 also brings 16 more registers: 32 zmm, else 16 ymm or xmm
        width = 64 if "zmm" in asm else 32 if "ymm" in asm else 16
        registers = 32 if width == 64 else 16
        fma = "vfmadd" in asm
    elif arch in ("aarch64", "arm64"):
        width, registers, fma = 16, 32, "fmla" in asm
    else:  # an unknown architecture: the shape every SIMD unit has, 16 bytes in 16 registers
        width, registers, fma = 16, 16, False
    return width, registers, fma


def vector_shape():
    """(vector bytes, vector registers, has fma) of the compile target."""
    return _vector_shape(target_name(), target_features())
