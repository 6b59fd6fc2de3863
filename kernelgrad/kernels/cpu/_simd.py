"""Explicit SIMD vectors for Numba: a vector type and the few operations the GEMM needs.

A Numba local of type `Vec` is an LLVM vector value (`<16 x float>` with AVX-512), so a
micro-kernel's accumulators written as separate locals stay in vector registers: LLVM
will not keep a NumPy array (heap memory) in registers, and leaving register allocation
to the SLP vectorizer over scalar locals is a gamble. The width is the host's widest
vector (64 bytes with AVX-512, else 32); on a narrower machine LLVM splits each vector
into native ones, so the code stays correct everywhere.

The loads and stores check no bounds: callers guarantee `i + lanes <= arr.size`.
"""
import llvmlite.binding as llvm_binding
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model

HAS_AVX512 = "+avx512f" in llvm_binding.get_host_cpu_features().flatten().split(",")
VECTOR_BYTES = 64 if HAS_AVX512 else 32
VECTOR_REGISTERS = 32 if HAS_AVX512 else 16


def lanes_of(dtype):
    return VECTOR_BYTES // dtype.bitwidth * 8


class Vec(types.Type):
    def __init__(self, dtype):
        self.dtype = dtype
        self.lanes = lanes_of(dtype)
        super().__init__(name=f"Vec({dtype} x {self.lanes})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _element_pointer(context, builder, arrty, arr, index):
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.gep(data, [index], inbounds=True)


def _check_array(arr):
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
            and arr.dtype in (types.float32, types.float64)):
        raise TypeError(f"SIMD operations need a 1-D contiguous float array, got {arr}")


@intrinsic
def lanes(typingctx, arr):
    """The number of elements in one vector of arr's dtype (a compile-time constant)."""
    _check_array(arr)

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, lanes_of(arr.dtype))
    return types.intp(arr), codegen


@intrinsic
def vzero(typingctx, arr):
    """A vector of zeros of arr's dtype."""
    _check_array(arr)
    vec = Vec(arr.dtype)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(vec), None)
    return vec(arr), codegen


@intrinsic
def vload(typingctx, arr, i):
    """arr[i : i + lanes] as a vector (unaligned)."""
    _check_array(arr)
    vec = Vec(arr.dtype)

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, arr, args[0], args[1])
        vty = context.get_value_type(vec)
        return builder.load(builder.bitcast(ptr, vty.as_pointer()), align=arr.dtype.bitwidth // 8)
    return vec(arr, types.intp), codegen


@intrinsic
def vstore(typingctx, arr, i, v):
    """arr[i : i + lanes] = v (unaligned)."""
    _check_array(arr)
    if not (isinstance(v, Vec) and v.dtype == arr.dtype):
        raise TypeError(f"cannot store {v} into {arr}")

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, arr, args[0], args[1])
        vty = context.get_value_type(v)
        builder.store(args[2], builder.bitcast(ptr, vty.as_pointer()),
                      align=arr.dtype.bitwidth // 8)
        return context.get_dummy_value()
    return types.void(arr, types.intp, v), codegen


@intrinsic
def vbroadcast(typingctx, arr, i):
    """A vector with every lane arr[i] (one broadcast load)."""
    _check_array(arr)
    vec = Vec(arr.dtype)

    def codegen(context, builder, sig, args):
        scalar = builder.load(_element_pointer(context, builder, arr, args[0], args[1]))
        vty = context.get_value_type(vec)
        one = builder.insert_element(ir.Constant(vty, ir.Undefined), scalar,
                                     ir.Constant(ir.IntType(32), 0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), vec.lanes), [0] * vec.lanes)
        return builder.shuffle_vector(one, one, mask)
    return vec(arr, types.intp), codegen


def _binary_vector_signature(a, b):
    if not (isinstance(a, Vec) and a == b):
        raise TypeError(f"vector operands must be one Vec type, got {a} and {b}")
    return a(a, b)


@intrinsic
def vfma(typingctx, a, b, c):
    """a * b + c, fused where the machine has FMA (llvm.fmuladd)."""
    _binary_vector_signature(a, b)
    if c != a:
        raise TypeError(f"vfma operands must be one Vec type, got {a}, {b}, {c}")

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(a)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vty, [vty, vty, vty]),
            f"llvm.fmuladd.v{a.lanes}{'f32' if a.dtype == types.float32 else 'f64'}")
        return builder.call(fn, args)
    return a(a, b, c), codegen


@intrinsic
def vadd(typingctx, a, b):
    sig = _binary_vector_signature(a, b)

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])
    return sig, codegen


@intrinsic
def vmax(typingctx, a, b):
    """Lane-wise maximum; a NaN lane yields the other operand (llvm.maxnum)."""
    sig = _binary_vector_signature(a, b)

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(a)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vty, [vty, vty]),
            f"llvm.maxnum.v{a.lanes}{'f32' if a.dtype == types.float32 else 'f64'}")
        return builder.call(fn, args)
    return sig, codegen


@intrinsic
def vreduce_max(typingctx, v):
    """The largest lane of v, ignoring NaN lanes (llvm.vector.reduce.fmax)."""
    if not isinstance(v, Vec):
        raise TypeError(f"vreduce_max needs a Vec, got {v}")

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(v)
        ety = context.get_value_type(v.dtype)
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ety, [vty]),
            f"llvm.vector.reduce.fmax.v{v.lanes}{'f32' if v.dtype == types.float32 else 'f64'}")
        return builder.call(fn, args)
    return v.dtype(v), codegen
