"""Explicit SIMD vectors for Numba: a vector type and the few operations the GEMM needs.

A Numba local of type `Vec` is an LLVM vector value (`<16 x float>` with AVX-512), so a
micro-kernel's accumulators written as separate locals stay in vector registers: LLVM
will not keep a NumPy array (heap memory) in registers, and leaving register allocation
to the SLP vectorizer over scalar locals is a gamble. The width is the widest vector of
the target Numba compiles for (_target.py: 64 bytes with AVX-512, 32 with AVX2, 16 with
SSE2 or NEON), whatever the host running it has.

The loads and stores check no bounds: callers guarantee `i + lanes <= arr.size`.
"""
from llvmlite import ir
from numba import njit
from numba.core import cgutils, types
from numba.extending import intrinsic, models, register_model

from ._target import vector_shape

VECTOR_BYTES, VECTOR_REGISTERS, HAS_FMA = vector_shape()


def lanes_of(dtype):
    return VECTOR_BYTES * 8 // dtype.bitwidth


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


def element_pointer(context, builder, arrty, arr, index, inbounds=True):
    """The address of arr[index]; inbounds=False for one that may lie past the array (a
    prefetch's: an inbounds address outside its object is poison to LLVM)."""
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.gep(data, [index], inbounds=inbounds)


def splat(builder, value, lanes):
    """An LLVM vector of `lanes` copies of the scalar `value`."""
    vty = ir.VectorType(value.type, lanes)
    one = builder.insert_element(ir.Constant(vty, ir.Undefined), value,
                                 ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(ir.IntType(32), lanes),
                                                        [0] * lanes))


def prefetch(builder, ptr, write, locality=3):
    """llvm.prefetch of the cache line at ptr, for reading or writing, into every level
    (locality 3) or into L2 and below (2): a hint, which never faults, so ptr may lie
    past an array's end."""
    i32 = ir.IntType(32)
    ptr = builder.bitcast(ptr, ir.IntType(8).as_pointer())
    fn = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32]),
        "llvm.prefetch.p0")
    builder.call(fn, [ptr, ir.Constant(i32, int(write)), ir.Constant(i32, locality),
                      ir.Constant(i32, 1)])


def check_array(arr):
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"
            and arr.dtype in (types.float32, types.float64)):
        raise TypeError(f"SIMD operations need a 1-D contiguous float array, got {arr}")


@intrinsic
def borrowed(typingctx, arr):
    """arr without its reference count: the same data, shape and strides, no meminfo.
    Every array variable a Numba loop assigns (a slice, a branch's pick, an inlined
    call's parameter) takes an atomic increment and decrement of its meminfo's count, a
    locked instruction that also waits for the store buffer to drain; on a view with none
    they test a null pointer. For views used only while the caller holds arr."""
    if not isinstance(arr, types.Array):
        raise TypeError(f"borrowed needs an array, got {arr}")

    def codegen(context, builder, sig, args):
        src = context.make_array(arr)(context, builder, args[0])
        view = context.make_array(arr)(context, builder)
        for field in ("data", "shape", "strides", "itemsize", "nitems"):
            setattr(view, field, getattr(src, field))
        view.meminfo = ir.Constant(view.meminfo.type, None)
        view.parent = ir.Constant(view.parent.type, None)
        return view._getvalue()
    return arr(arr), codegen


@intrinsic
def lanes(typingctx, arr):
    """The number of elements in one vector of arr's dtype (a compile-time constant)."""
    check_array(arr)

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, lanes_of(arr.dtype))
    return types.intp(arr), codegen


@intrinsic
def vzero(typingctx, arr):
    """A vector of zeros of arr's dtype."""
    check_array(arr)
    vec = Vec(arr.dtype)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(vec), None)
    return vec(arr), codegen


@intrinsic
def vload(typingctx, arr, i):
    """arr[i : i + lanes] as a vector (unaligned)."""
    check_array(arr)
    vec = Vec(arr.dtype)

    def codegen(context, builder, sig, args):
        ptr = element_pointer(context, builder, arr, args[0], args[1])
        vty = context.get_value_type(vec)
        return builder.load(builder.bitcast(ptr, vty.as_pointer()), align=arr.dtype.bitwidth // 8)
    return vec(arr, types.intp), codegen


def _first_lanes(context, builder, vec, count):
    """The mask of lanes j < count (an intp)."""
    intp = context.get_value_type(types.intp)
    n, i32 = vec.lanes, ir.IntType(32)
    lane_ids = ir.Constant(ir.VectorType(intp, n), list(range(n)))
    bound = builder.insert_element(ir.Constant(ir.VectorType(intp, n), ir.Undefined), count,
                                   ir.Constant(i32, 0))
    bound = builder.shuffle_vector(bound, bound, ir.Constant(ir.VectorType(i32, n), [0] * n))
    return builder.icmp_signed("<", lane_ids, bound)


def _masked_suffix(vec):
    return f"v{vec.lanes}{'f32' if vec.dtype == types.float32 else 'f64'}"


def _masked_store(builder, vec, vty, mask):
    """LLVM's masked store for vector type vty: (value, pointer, alignment, mask)."""
    return cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(ir.VoidType(), [vty, vty.as_pointer(), ir.IntType(32), mask.type]),
        f"llvm.masked.store.{_masked_suffix(vec)}.p0")


@intrinsic
def vload_first(typingctx, arr, i, count):
    """A vector of arr[i + j] for lanes j < count and 0 in the others (count <= lanes):
    a masked load, which reads nothing past arr[i + count - 1]."""
    check_array(arr)
    vec = Vec(arr.dtype)

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(vec)
        mask = _first_lanes(context, builder, vec, args[2])
        load = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(vty, [vty.as_pointer(), ir.IntType(32), mask.type, vty]),
            f"llvm.masked.load.{_masked_suffix(vec)}.p0")
        ptr = builder.bitcast(element_pointer(context, builder, arr, args[0], args[1]),
                              vty.as_pointer())
        return builder.call(load, [ptr, ir.Constant(ir.IntType(32), arr.dtype.bitwidth // 8),
                                   mask, ir.Constant(vty, None)])
    return vec(arr, types.intp, types.intp), codegen


@intrinsic
def vstore_first(typingctx, arr, i, v, count):
    """arr[i + j] = v[j] for lanes j < count (<= lanes): a masked store, which writes
    nothing past arr[i + count - 1]."""
    check_array(arr)
    if not (isinstance(v, Vec) and v.dtype == arr.dtype):
        raise TypeError(f"cannot store {v} into {arr}")

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(v)
        mask = _first_lanes(context, builder, v, args[3])
        store = _masked_store(builder, v, vty, mask)
        ptr = builder.bitcast(element_pointer(context, builder, arr, args[0], args[1]),
                              vty.as_pointer())
        builder.call(store, [args[2], ptr, ir.Constant(ir.IntType(32), arr.dtype.bitwidth // 8),
                             mask])
        return context.get_dummy_value()
    return types.void(arr, types.intp, v, types.intp), codegen


@intrinsic
def vstore(typingctx, arr, i, v):
    """arr[i : i + lanes] = v (unaligned)."""
    check_array(arr)
    if not (isinstance(v, Vec) and v.dtype == arr.dtype):
        raise TypeError(f"cannot store {v} into {arr}")

    def codegen(context, builder, sig, args):
        ptr = element_pointer(context, builder, arr, args[0], args[1])
        vty = context.get_value_type(v)
        builder.store(args[2], builder.bitcast(ptr, vty.as_pointer()),
                      align=arr.dtype.bitwidth // 8)
        return context.get_dummy_value()
    return types.void(arr, types.intp, v), codegen


@intrinsic
def vbroadcast(typingctx, arr, i):
    """A vector with every lane arr[i] (one broadcast load)."""
    check_array(arr)
    vec = Vec(arr.dtype)

    def codegen(context, builder, sig, args):
        scalar = builder.load(element_pointer(context, builder, arr, args[0], args[1]))
        return splat(builder, scalar, vec.lanes)
    return vec(arr, types.intp), codegen


def _prefetch_intrinsic(write, locality=3):
    def vprefetch_(typingctx, arr, i):
        check_array(arr)

        def codegen(context, builder, sig, args):
            prefetch(builder, element_pointer(context, builder, arr, args[0], args[1],
                                              inbounds=False), write, locality)
            return context.get_dummy_value()
        return types.void(arr, types.intp), codegen
    return intrinsic(vprefetch_)


# A hint to bring the cache line of arr[i] into L1, for writing (the GEMM asks for its C
# tile before the k loop, so that the tile's update at the end does not wait for memory)
# or for reading (elementwise kernels ask for their input a few KiB ahead). A hint never
# faults, so i needs no bounds.
vprefetch = _prefetch_intrinsic(True)
vprefetch_read = _prefetch_intrinsic(False)
# ... or into L2 only, for data wanted a while from now that must not evict L1's
vprefetch_l2 = _prefetch_intrinsic(False, locality=2)

# How far ahead of the data being computed a stream requests its lines. A loop that is
# compute bound in cache (an activation, the softmax's exp sweep, Philox) holds only a
# few hundred bytes in the out-of-order window, and the hardware prefetcher did not run
# far enough ahead: at 16M elements such loops took about the sum of their compute and
# memory times until they asked for the lines 4 KiB ahead.
PREFETCH_BYTES = 4096
# Elements per block of such a stream: each block requests its lines once.
STREAM_BLOCK = 64


@njit(inline="always")
def line_head(arr):
    """How many leading elements of arr lie before its first 64-byte boundary (at most
    arr.size). NumPy's buffers from malloc start 16 bytes past one as often as not; a loop
    that writes from the boundary on never splits a vector store across two cache lines,
    which costs a loop over an array in L2 (relu of 64x128 float32: 1.08 -> 0.88 us)."""
    return min(arr.size, ((-arr.ctypes.data) & 63) // arr.itemsize)


@intrinsic
def line_elements(typingctx, arr):
    """The number of elements of arr's dtype in a 64-byte cache line, as a compile-time
    constant (arr.itemsize is read at run time: a loop stepping by 64 // arr.itemsize
    divided by it to count its trips, a division on every call)."""
    check_array(arr)

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, 512 // arr.dtype.bitwidth)
    return types.intp(arr), codegen


def _lines(request):
    @njit(inline="always")
    def prefetch_lines(arr, start, count):
        """Request the cache lines of arr[start : start + count]; no bounds needed."""
        for j in range(start, start + count, line_elements(arr)):
            request(arr, j)
    return prefetch_lines


# the lines of a block an elementwise loop will read, or write, PREFETCH_BYTES from now
prefetch_lines_read = _lines(vprefetch_read)
prefetch_lines_write = _lines(vprefetch)
prefetch_lines_l2 = _lines(vprefetch_l2)


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
    """Lane-wise b > a ? b : a: one max instruction on x86. A lane where b is NaN keeps
    a; a lane where a is NaN stays NaN (llvm.maxnum, which returns the number, costs a
    compare and a blend more per vector on AVX2)."""
    sig = _binary_vector_signature(a, b)

    def codegen(context, builder, sig, args):
        greater = builder.fcmp_ordered(">", args[1], args[0])
        return builder.select(greater, args[1], args[0])
    return sig, codegen


def _lane_reduction(name, start=None, fastmath=()):
    """An intrinsic v -> one scalar by llvm.vector.reduce.<name> (with the start value
    start, where that reduction takes one)."""
    def reduce(typingctx, v):
        if not isinstance(v, Vec):
            raise TypeError(f"{name} reduction needs a Vec, got {v}")

        def codegen(context, builder, sig, args):
            ety = context.get_value_type(v.dtype)
            operands = ([] if start is None else [ir.Constant(ety, start)]) + list(args)
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ety, [op.type for op in operands]),
                f"llvm.vector.reduce.{name}.{_masked_suffix(v)}")
            return builder.call(fn, operands, fastmath=fastmath)
        return v.dtype(v), codegen
    reduce.__name__ = reduce.__qualname__ = f"vreduce_{name}"
    return intrinsic(reduce)


# The largest lane of v, ignoring NaN lanes
vreduce_max = _lane_reduction("fmax")
# The sum of v's lanes, added pairwise in a tree (reassociation allowed: in lane order it
# is a chain of lanes - 1 dependent adds)
vreduce_add = _lane_reduction("fadd", start=-0.0, fastmath=("reassoc",))


@intrinsic
def vtranspose_copy(typingctx, src, src_off, src_ld, rows, dst, dst_off, dst_ld, width):
    """dst[dst_off + c * dst_ld + r] = src[src_off + r * src_ld + c] for c < lanes and
    r < width (<= lanes), where rows r >= `rows` (1 <= rows <= lanes) read as zeros: one
    lanes x lanes block copied transposed through registers (a vector load per row, log2
    lanes rounds of interleaving shuffles, a masked vector store per column), where a
    scalar transpose does a load and a store per element. Packing a GEMM operand whose rows
    run along k (op(A) = A, op(B) = B^T) is this block by block, zero padding included.
    Nothing outside the `rows` source rows is read and nothing outside the block written."""
    check_array(src)
    check_array(dst)
    if src.dtype != dst.dtype:
        raise TypeError(f"vtranspose_copy between {src} and {dst}")
    vec = Vec(src.dtype)
    n = vec.lanes
    i32 = ir.IntType(32)
    half = n // 2
    # interleave the low (high) halves of a and b: a0 b0 a1 b1 ...
    low = ir.Constant(ir.VectorType(i32, n), [x for j in range(half) for x in (j, n + j)])
    high = ir.Constant(ir.VectorType(i32, n),
                       [x for j in range(half, n) for x in (j, n + j)])

    def codegen(context, builder, sig, args):
        src_arr, s_off, s_ld, n_rows, dst_arr, d_off, d_ld, n_store = args
        vty = context.get_value_type(vec)
        align = src.dtype.bitwidth // 8
        intp = context.get_value_type(types.intp)
        zero = ir.Constant(vty, None)
        last = builder.sub(n_rows, ir.Constant(intp, 1))
        vectors = []
        for r in range(n):
            # rows past `rows` load the last valid one (in bounds) and are replaced by 0
            r_const = ir.Constant(intp, r)
            valid = builder.icmp_signed("<", r_const, n_rows)
            row = builder.select(valid, r_const, last)
            ptr = element_pointer(context, builder, src, src_arr,
                                   builder.add(s_off, builder.mul(s_ld, row)))
            loaded = builder.load(builder.bitcast(ptr, vty.as_pointer()), align=align)
            vectors.append(builder.select(valid, loaded, zero))
        # after log2(lanes) rounds of pairing row j with row j + lanes/2, vector c is column c
        for _ in range(n.bit_length() - 1):
            paired = []
            for j in range(half):
                paired.append(builder.shuffle_vector(vectors[j], vectors[j + half], low))
                paired.append(builder.shuffle_vector(vectors[j], vectors[j + half], high))
            vectors = paired
        mask = _first_lanes(context, builder, vec, n_store)
        store = _masked_store(builder, vec, vty, mask)
        pointers = [builder.bitcast(element_pointer(
            context, builder, dst, dst_arr,
            builder.add(d_off, builder.mul(d_ld, ir.Constant(intp, c)))), vty.as_pointer())
            for c in range(n)]
        # a whole block takes plain stores: a masked store is several times slower (Zen 3)
        whole = builder.icmp_signed("==", n_store, ir.Constant(intp, n))
        with builder.if_else(whole) as (plain, masked):
            with plain:
                for vector, ptr in zip(vectors, pointers):
                    builder.store(vector, ptr, align=align)
            with masked:
                for vector, ptr in zip(vectors, pointers):
                    builder.call(store, [vector, ptr, ir.Constant(i32, align), mask])
        return context.get_dummy_value()
    return types.void(src, types.intp, types.intp, types.intp, dst, types.intp, types.intp,
                      types.intp), codegen
