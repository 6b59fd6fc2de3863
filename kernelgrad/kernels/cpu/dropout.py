"""Inverted dropout with Philox4x32-10 generated inside the kernel; the mask is never stored.

One Philox call per 4 elements (the stream layout is defined in kernels/philox.py).
Whole groups of blocks go through `_dropout_vector`, which computes W blocks at once in
uint64 lanes of one to eight vectors and writes their 4W elements (256 bytes); the
scalar loop does the last few blocks. Bound: compute (10 rounds of two 32x32->64-bit
multiplies per 4 elements), close to memory bound with 64-byte vectors, compute bound
with 32 (AVX2: 4 multiplies per instruction).
"""
import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic

from ..philox import PHILOX_M0, PHILOX_M1, PHILOX_W0, PHILOX_W1, ROUNDS
from ._jit import kernel
from ._simd import (
    PREFETCH_BYTES,
    VECTOR_BYTES,
    borrowed,
    check_array,
    element_pointer,
    prefetch,
    splat,
)
from .bias_grad import sum_in_bands

_M0, _M1 = np.uint64(PHILOX_M0), np.uint64(PHILOX_M1)
_W0, _W1 = np.uint64(PHILOX_W0), np.uint64(PHILOX_W1)
_MASK = np.uint64(0xFFFFFFFF)
_SHIFT = np.uint64(32)


@njit(inline="always")
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        c0, c1, c2, c3 = ((p1 >> _SHIFT) ^ c1 ^ k0, p1 & _MASK,
                          (p0 >> _SHIFT) ^ c3 ^ k1, p0 & _MASK)
        k0 = (k0 + _W0) & _MASK  # the bump after the last round is never used
        k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


@njit(inline="always")
def _keep(word, x, threshold, scale, zero):
    return x * scale if word >= threshold else zero


# Philox blocks computed at once by _dropout_vector: a group writes GROUP_BYTES of output,
# in uint64 lanes of one to eight vectors. A block is ten dependent rounds (about 50
# cycles), so with one vector per step a narrow target's loop waited on that chain, and
# independent vectors fill the integer units; a wider group's stores outran the memory.
# Zen 4, 16M elements, 2 threads, one vector -> a 256-byte group: float32 haswell 6.0-6.3
# -> 5.2 ms (four vectors), znver4 4.6-5.5 -> 3.9-5.0 (two; four, 512 bytes: 5.6); float64
# haswell 9.5-11.3 -> 7.8-8.8 (two; four: 8.4), znver4 8.9-9.0 as before (one; two, 512
# bytes, 9.4-10.1). In L1, one thread, float32: haswell 0.72 -> 0.59 ns per element,
# x86-64 1.55 -> 1.10 (eight vectors; sixteen gained nothing more).
GROUP_BYTES = 256


def group_blocks(dtype):
    """W: the Philox blocks (4 elements each) of one group of `dtype` elements."""
    return max(GROUP_BYTES // (4 * np.dtype(dtype).itemsize), 2, VECTOR_BYTES // 8)


@intrinsic
def _group_blocks(typingctx, x):
    """group_blocks of x's dtype, as a compile-time constant."""
    check_array(x)

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, group_blocks(str(x.dtype)))
    return types.intp(x), codegen


def _lane_order(W):
    """Lane 2i holds block i and lane 2i + 1 block W/2 + i: the order in which x86's
    unpack-low/high of 64-bit pairs (per 128-bit half) yields the first and second half of
    the group's elements directly. Returns that, and for element 4b + j (word j of block b)
    its place in the pairs vectors of words (0, 1) and (2, 3) laid side by side."""
    lane_block = [lane // 2 + (W // 2 if lane % 2 else 0) for lane in range(W)]
    order = [(2 * lane_block.index(b) + j) if j < 2 else (2 * W + 2 * lane_block.index(b) + j - 2)
             for b in range(W) for j in range(4)]
    return lane_block, order


@intrinsic
def _dropout_vector(typingctx, x, out, local_block, block, o0, o1, k0, k1, threshold, scale):
    """out[4*local_block + e] = x[...] * scale or 0, for e < 4W: Philox blocks block ..
    block + W - 1 (global numbers: the counters), in W uint64 lanes.

    Written at the IR level because LLVM's vectorization of the scalar loop interleaves
    two groups of blocks and spills (about 250 instructions per 32 elements on AVX2).
    Here each round is two multiplies of zero-extended 32-bit halves (pmuludq), two shifts
    and four xors per vector; the products' high halves are not masked off (only their
    low 32 bits are ever read: by the next multiply, masked there, and by the words).
    The words' low halves are gathered into element order (element 4b + j takes word j of
    block b: lanes hold their blocks in _lane_order's order, so that takes a shift and a
    blend per word pair and one unpack per output vector), compared unsigned with the
    threshold, and select the scaled input or zero. The input is loaded before the rounds
    and the lines PREFETCH_BYTES ahead are requested: each group is ten dependent rounds
    (about 80 cycles), so the out-of-order window reaches few groups ahead (16M elements,
    2 threads: haswell 10.5-11 ms without the requests, 7.6-7.8 with, 6.4-7.0 with this
    lane order instead of truncating and shuffling in block order (119 -> 108 instructions
    per 16 elements; AVX-512 96 -> 81 per 32); x86-64 23-24 with the scalar loop,
    12.4-12.6). Callers guarantee that all 4W elements exist."""
    check_array(x)
    check_array(out)
    if x != out:
        raise TypeError(f"dropout needs one array type for x and out, got {x} and {out}")

    W = group_blocks(str(x.dtype))
    lane_block, order = _lane_order(W)

    def codegen(context, builder, sig, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        x_arr, out_arr, local, blk = args[:4]
        u64 = [context.cast(builder, v, t, types.uint64)
               for v, t in zip(args[4:9], sig.args[4:9])]
        o0_, o1_, k0_, k1_, thr = u64
        scale_ = context.cast(builder, args[9], sig.args[9], x.dtype)
        fty = ir.VectorType(context.get_value_type(x.dtype), 4 * W)
        first = builder.mul(local, ir.Constant(local.type, 4))
        src = builder.bitcast(element_pointer(context, builder, x, x_arr, first), fty.as_pointer())
        dst = builder.bitcast(element_pointer(context, builder, out, out_arr, first),
                              fty.as_pointer())
        align = x.dtype.bitwidth // 8
        itemsize = x.dtype.bitwidth // 8
        for line in range(max(1, 4 * W * itemsize // 64)):  # every line of the group's
            ahead = ir.Constant(local.type, (PREFETCH_BYTES + 64 * line) // itemsize)
            for arr_t, arr_v, write in ((x, x_arr, False), (out, out_arr, True)):
                prefetch(builder, element_pointer(context, builder, arr_t, arr_v,
                                                  builder.add(first, ahead), inbounds=False),
                         write)
        scaled = builder.fmul(builder.load(src, align=align), splat(builder, scale_, 4 * W))
        vec = ir.VectorType(i64, W)
        mask32 = ir.Constant(vec, [0xFFFFFFFF] * W)
        shift = ir.Constant(vec, [32] * W)
        counter = builder.add(splat(builder, context.cast(builder, blk, sig.args[3],
                                                           types.uint64), W),
                              ir.Constant(vec, lane_block))
        c0, c1 = builder.and_(counter, mask32), builder.lshr(counter, shift)
        c2, c3 = splat(builder, o0_, W), splat(builder, o1_, W)
        m0, m1 = ir.Constant(vec, [PHILOX_M0] * W), ir.Constant(vec, [PHILOX_M1] * W)
        key0, key1 = k0_, k1_
        for r in range(ROUNDS):
            if r:  # the key's Weyl bump, mod 2^32 as in the reference
                key0 = builder.and_(builder.add(key0, ir.Constant(i64, PHILOX_W0)),
                                    ir.Constant(i64, 0xFFFFFFFF))
                key1 = builder.and_(builder.add(key1, ir.Constant(i64, PHILOX_W1)),
                                    ir.Constant(i64, 0xFFFFFFFF))
            p0 = builder.mul(builder.and_(c0, mask32), m0)
            p1 = builder.mul(builder.and_(c2, mask32), m1)
            c0, c1, c2, c3 = (
                builder.xor(builder.xor(builder.lshr(p1, shift), c1), splat(builder, key0, W)),
                p1,
                builder.xor(builder.xor(builder.lshr(p0, shift), c3), splat(builder, key1, W)),
                p0)
        # Each lane's words 0 and 1, then 2 and 3, side by side as 32-bit pairs (a shift
        # and a blend), then whole lanes' pairs interleaved into element order: one
        # unpack per half, the lanes already holding their blocks in that order.
        w = [builder.bitcast(c, ir.VectorType(i32, 2 * W)) for c in (c0, c1, c2, c3)]
        pair = ir.Constant(ir.VectorType(i32, 2 * W), [k for lane in range(W)
                                                         for k in (2 * lane, 2 * W + 2 * lane)])
        w01 = builder.shuffle_vector(w[0], w[1], pair)
        w23 = builder.shuffle_vector(w[2], w[3], pair)
        words = builder.shuffle_vector(w01, w23, ir.Constant(ir.VectorType(i32, 4 * W), order))
        threshold_v = splat(builder, builder.trunc(thr, i32), 4 * W)
        keep = builder.icmp_unsigned(">=", words, threshold_v)
        builder.store(builder.select(keep, scaled, ir.Constant(fty, None)), dst, align=align)
        return context.get_dummy_value()
    return types.void(x, out, types.intp, block, o0, o1, k0, k1, threshold, scale), codegen


# Blocks of 4 elements per thread task. A prange straight over blocks compiles to a loop
# LLVM does not vectorize (4x slower than the serial build); a plain inner loop over a
# chunk's blocks vectorizes in both builds.
CHUNK_BLOCKS = 1 << 14


@njit(inline="always")
def _dropout_blocks(x, out, first, count, threshold, scale, o0, o1, k0, k1):
    """Blocks first .. first + count - 1; x and out are views starting at block `first`
    (indices from 0 carry no wraparound checks, which would block vectorizing)."""
    zero = x.dtype.type(0)
    W = _group_blocks(x)
    whole = count - count % W
    for block in range(0, whole, W):
        _dropout_vector(x, out, block, np.uint64(first + block), o0, o1, k0, k1, threshold,
                        scale)
    for block in range(whole, count):
        b = np.uint64(first + block)
        w0, w1, w2, w3 = philox4x32_10(b & _MASK, b >> _SHIFT, o0, o1, k0, k1)
        base = 4 * block
        out[base] = _keep(w0, x[base], threshold, scale, zero)
        out[base + 1] = _keep(w1, x[base + 1], threshold, scale, zero)
        out[base + 2] = _keep(w2, x[base + 2], threshold, scale, zero)
        out[base + 3] = _keep(w3, x[base + 3], threshold, scale, zero)


@kernel
def dropout(x, out, threshold, scale, seed, offset):
    """out = x * scale where the element's Philox word >= threshold, else 0 (x flat)."""
    n = x.size
    threshold = np.uint64(threshold)
    k0, k1 = np.uint64(seed) & _MASK, np.uint64(seed) >> _SHIFT
    o0, o1 = np.uint64(offset) & _MASK, np.uint64(offset) >> _SHIFT
    full_blocks = n // 4
    # Whole blocks in branch-free loops (so LLVM can vectorize them), the tail after.
    for chunk in prange((full_blocks + CHUNK_BLOCKS - 1) // CHUNK_BLOCKS):
        first = chunk * CHUNK_BLOCKS
        count = min(CHUNK_BLOCKS, full_blocks - first)
        _dropout_blocks(x[4 * first:], out[4 * first:], first, count, threshold, scale,
                        o0, o1, k0, k1)
    base = 4 * full_blocks
    if base < n:
        b = np.uint64(full_blocks)
        words = philox4x32_10(b & _MASK, b >> _SHIFT, o0, o1, k0, k1)
        for j in range(n - base):
            out[base + j] = _keep(words[j], x[base + j], threshold, scale, x.dtype.type(0))


# ---- the backward of a ReLU followed by dropout, from the dropout's output ----
# After a ReLU, the dropout's output d = y * scale (kept) or 0 is > 0 exactly where the
# mask kept y and y > 0: scale >= 1 keeps a positive y positive, and NaN and 0 compare
# false before and after. So dropout's backward (g * scale where kept, else 0) followed by
# ReLU's (that where y > 0, else 0) is, bit for bit, g * scale where d > 0 and 0
# elsewhere: no Philox, and one pass where there were two (three with the bias's sums).


@njit(inline="always")
def _relu_dropout_grad(g, d, scale, zero):
    return g * scale if d > zero else zero


@kernel
def relu_dropout_backward(g, d, dz, scale):
    """dz = g * scale where d > 0, else 0 (flat arrays)."""
    zero = g.dtype.type(0)
    for i in prange(g.size):
        dz[i] = _relu_dropout_grad(g[i], d[i], scale, zero)


@njit(inline="always")
def _grad_row(i, args):
    """Row i of dz, computed, for sum_in_bands to add."""
    g, d, dz, scale, zero = args
    row_g, row_d, row_dz = g[i], d[i], dz[i]
    for j in range(row_g.size):
        row_dz[j] = _relu_dropout_grad(row_g[j], row_d[j], scale, zero)
    return row_dz


@kernel
def relu_dropout_backward_sums(g, d, dz, scale, out, bands):
    """relu_dropout_backward on (N, C) arrays, and out = dz's column sums: each row is
    summed (bias_grad's order, so bias_grad(dz)'s bits) while still in L1."""
    args = (borrowed(g), borrowed(d), borrowed(dz), scale, g.dtype.type(0))
    sum_in_bands(_grad_row, args, g.shape[0], out, bands)
