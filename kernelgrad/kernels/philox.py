"""Philox4x32-10 counter-based RNG (Salmon et al., SC'11), vectorized NumPy.

This module is the one definition of the generator and of how dropout draws from it;
the Numba kernel (cpu/dropout.py) and the CUDA kernel (cuda/dropout.cu) implement the
same arithmetic and are tested bit for bit against it.

Dropout stream layout: element i of a tensor, for a (seed, offset) pair, uses word
i % 4 of philox(counter, key) with
    counter = (b mod 2^32, b >> 32, offset mod 2^32, offset >> 32),  b = i // 4
    key     = (seed mod 2^32, seed >> 32)
and is kept when that word is >= keep_threshold(p) = round(p * 2^32), so that
P(keep) = 1 - p to within 2^-32 and the decision is exact integer arithmetic on every
device.
"""
import numpy as np

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
ROUNDS = 10
_MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32_10(counter, key):
    """Philox4x32-10 of uint32 counters (..., 4) under uint32 keys (..., 2).

    Shapes broadcast over the leading dimensions; returns uint32 (..., 4).
    """
    counter = np.asarray(counter)
    key = np.asarray(key)
    if counter.shape[-1:] != (4,) or key.shape[-1:] != (2,):
        raise ValueError(f"philox4x32_10 needs counter (..., 4) and key (..., 2), got "
                         f"{counter.shape} and {key.shape}")
    c0, c1, c2, c3 = (counter[..., j].astype(np.uint64) for j in range(4))
    k0, k1 = (key[..., j].astype(np.uint64) for j in range(2))
    m0, m1 = np.uint64(PHILOX_M0), np.uint64(PHILOX_M1)
    w0, w1 = np.uint64(PHILOX_W0), np.uint64(PHILOX_W1)
    shift = np.uint64(32)
    for r in range(ROUNDS):
        if r:
            k0 = (k0 + w0) & _MASK32
            k1 = (k1 + w1) & _MASK32
        p0 = m0 * c0
        p1 = m1 * c2
        c0, c1, c2, c3 = ((p1 >> shift) ^ c1 ^ k0, p1 & _MASK32,
                          (p0 >> shift) ^ c3 ^ k1, p0 & _MASK32)
    return np.stack([c0, c1, c2, c3], axis=-1).astype(np.uint32)


def keep_threshold(p):
    """The uint32 threshold below which a Philox word drops its element (p in [0, 1))."""
    return min(int(round(float(p) * 2.0 ** 32)), 2 ** 32 - 1)


def dropout_words(size, seed, offset=0):
    """The uint32 word that decides each of `size` elements for (seed, offset)."""
    blocks = np.arange((size + 3) // 4, dtype=np.uint64)
    seed, offset = int(seed), int(offset)
    counter = np.empty(blocks.shape + (4,), dtype=np.uint64)
    counter[:, 0] = blocks & _MASK32
    counter[:, 1] = blocks >> np.uint64(32)
    counter[:, 2] = offset & 0xFFFFFFFF
    counter[:, 3] = offset >> 32
    key = np.array([seed & 0xFFFFFFFF, seed >> 32], dtype=np.uint64)
    return philox4x32_10(counter, key).reshape(-1)[:size]


def dropout_mask(shape, p, seed, offset=0):
    """The boolean keep-mask of inverted dropout for (seed, offset) and this shape."""
    size = int(np.prod(shape, dtype=np.int64))
    return (dropout_words(size, seed, offset) >= keep_threshold(p)).reshape(shape)
