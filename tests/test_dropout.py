"""Dropout: the mask equals philox.py's bit for bit on every device, statistics,
determinism, backward."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R
from kernelgrad.kernels.ops import dropout as dropout_ops
from kernelgrad.kernels.philox import dropout_mask

from conftest import (
    AWKWARD,
    DTYPES,
    SPECIALS,
    assert_as_on_the_cpu,
    gpu_sizes,
    gpu_test,
    on_device,
    to_host,
)


def check_dropout(rng, shape, p, seed, offset, dtype):
    x = (rng.standard_normal(shape) + 3.0).astype(dtype)  # no zeros, so the mask is visible
    y = K.dropout(x, p, seed, offset)
    mask = dropout_mask(shape, p, seed, offset)
    np.testing.assert_array_equal(y != 0, mask)
    np.testing.assert_allclose(y, R.dropout(x, p, seed, offset), rtol=2e-7 if dtype == np.float32
                               else 1e-15)
    dy = rng.standard_normal(shape).astype(dtype)
    dx = K.dropout_backward(dy, p, seed, offset)
    np.testing.assert_array_equal(dx, np.where(mask, dy * dtype(1 / (1 - p)), 0).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(n,) for n in AWKWARD] + [(33, 127), (5, 1, 3),
                                   (999, 333), (2 * 4 * 16384 + 3,)])  # several parallel chunks
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9])
def test_dropout_matches_numpy_philox(rng, shape, p, dtype):
    check_dropout(rng, shape, p, int(rng.integers(0, 2 ** 63)), int(rng.integers(0, 2 ** 40)),
                  dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_count_of_vector_groups_and_tail_blocks(rng, dtype):
    """The kernel computes W Philox blocks (4W elements) at once and the last blocks one by
    one: every size up to four groups and a tail, so that each split is met."""
    from kernelgrad.kernels.cpu.dropout import group_blocks
    W = group_blocks(dtype)
    for n in range(1, 16 * W + 8):
        check_dropout(rng, (n,), 0.5, int(rng.integers(0, 2 ** 64, dtype=np.uint64)),
                      int(rng.integers(0, 2 ** 64, dtype=np.uint64)), dtype)


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(1, 60), min_size=1, max_size=3).map(tuple),
       p=st.floats(0.0, 0.99), seed=st.integers(0, 2 ** 64 - 1),
       offset=st.integers(0, 2 ** 64 - 1))
def test_dropout_hypothesis(shape, p, seed, offset):
    check_dropout(np.random.default_rng(seed % 2 ** 32), shape, p, seed, offset, np.float32)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    n = 1_000_000
    x = np.ones(n, np.float32)
    y = K.dropout(x, p, seed=2024, offset=7)
    kept = np.count_nonzero(y)
    sigma = np.sqrt(n * p * (1 - p))
    assert abs(kept - n * (1 - p)) < 4 * sigma, (kept, n * (1 - p), sigma)
    # E[y] = x: the inverted scale keeps the mean; std of the mean is sqrt(p / (1-p) / n)
    assert abs(y.mean() - 1.0) < 4 * np.sqrt(p / (1 - p) / n)


def test_dropout_determinism():
    x = np.ones(10_000, np.float32)
    first = K.dropout(x, 0.5, seed=11, offset=3)
    np.testing.assert_array_equal(first, K.dropout(x, 0.5, seed=11, offset=3))
    assert not np.array_equal(first, K.dropout(x, 0.5, seed=11, offset=4))
    assert not np.array_equal(first, K.dropout(x, 0.5, seed=12, offset=3))


def test_p_zero_is_identity(rng):
    x = rng.standard_normal(1000).astype(np.float32)
    np.testing.assert_array_equal(K.dropout(x, 0.0, seed=1), x)


@pytest.mark.parametrize("dtype", DTYPES)
# one band and several (128 rows a band), rows left over past groups of four, the
# parallel build (33K elements)
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (130, 33), (517, 64), (2100, 5)])
@pytest.mark.parametrize("p", [1e-9, 0.2, 0.9])  # 1e-9: a float32 scale of exactly 1
def test_relu_dropout_backward_is_the_two_backwards(rng, shape, p, dtype):
    """The captured step's fused pass, from the dropout's output alone, gives what
    dropout's backward and then ReLU's give, and bias_grad's column sums, bit for bit."""
    x, g = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    x.flat[:SPECIALS.size] = SPECIALS[:x.size]
    g.flat[-SPECIALS.size:] = SPECIALS[-g.size:]
    seed, offset = int(rng.integers(0, 2 ** 63)), int(rng.integers(0, 2 ** 40))
    y = K.activation(x, "relu")
    d = K.dropout(y, p, seed, offset)
    expected = K.activation_backward(K.dropout_backward(g, p, seed, offset), y, "relu")
    scale = dropout_ops.constants(p, np.dtype(dtype))[1]
    dz, db = dropout_ops.relu_dropout_backward_cpu(g, d, scale, True)
    assert dz.tobytes() == expected.tobytes()
    assert db.tobytes() == K.bias_grad(expected).tobytes()
    dz, none = dropout_ops.relu_dropout_backward_cpu(g, d, scale, False)
    assert dz.tobytes() == expected.tobytes() and none is None


@gpu_test
@pytest.mark.parametrize("misalign", [False, True])
@pytest.mark.parametrize("shape", gpu_sizes((1,), (7,), (33, 127), (1000,), large=[(1 << 20,)]))
@pytest.mark.parametrize("p", [0.0, 0.1, 0.5])
def test_cuda_mask_equals_the_cpu_one(rng, shape, p, misalign):
    x = rng.standard_normal(shape).astype(np.float32)
    seed, offset = int(rng.integers(0, 2 ** 63)), int(rng.integers(0, 2 ** 40))
    y = to_host(K.dropout(on_device(x, "cuda", misalign), p, seed, offset))
    mask = dropout_mask(shape, p, seed, offset)
    np.testing.assert_array_equal(y != 0, mask & (x != 0))
    np.testing.assert_array_equal(y, K.dropout(x, p, seed, offset))  # bit for bit
    dx = to_host(K.dropout_backward(on_device(x, "cuda"), p, seed, offset))
    np.testing.assert_array_equal(dx, y)


@gpu_test
def test_cuda_special_values_give_what_the_cpu_gives():
    x = np.tile(SPECIALS, 5)
    for p in (0.0, 0.5):
        assert_as_on_the_cpu(to_host(K.dropout(on_device(x, "cuda"), p, 7, 3)),
                             K.dropout(x, p, 7, 3), "dropout")
