"""The output-buffer pool (kernels/_alloc.py): large buffers are reused only once no array
or view of them is alive, and results with the pool equal results without it."""
import numpy as np

import kernelgrad as kg
from kernelgrad import nn
from kernelgrad.kernels import _alloc

POOLED_EMPTY = _alloc.empty  # the real allocator, before the tests' NaN-filled one replaces it
BIG = (1024, 1024)       # 4 MiB of float32: pooled


def test_small_arrays_are_not_pooled():
    a = POOLED_EMPTY((10, 10), np.float32)
    assert a.base is None and not _alloc.is_pooled(a)


def test_an_idle_buffer_is_reused_and_a_live_one_is_not():
    a = POOLED_EMPTY(BIG, np.float32)
    address = a.ctypes.data
    b = POOLED_EMPTY(BIG, np.float32)
    assert b.ctypes.data != address  # a is alive
    del a
    c = POOLED_EMPTY(BIG, np.float32)
    assert c.ctypes.data == address and c.shape == BIG and c.dtype == np.float32
    view = c[1:, ::3]
    del c
    d = POOLED_EMPTY(BIG, np.float32)
    assert d.ctypes.data != address  # a view keeps the buffer alive
    del view, b, d


def test_buffers_start_on_a_page_boundary():
    """(malloc's start 16 bytes past one: vector stores then straddle cache lines)"""
    arrays = [POOLED_EMPTY(shape, dtype) for shape, dtype in
              [(BIG, np.float32), ((333, 1001), np.float64), ((1 << 20) + 3, np.float32)]]
    for a in arrays:
        assert a.ctypes.data % _alloc.PAGE == 0 and a.flags.c_contiguous and a.flags.aligned
        assert _alloc.is_pooled(a)
        a[...] = 1  # the whole array is inside its buffer
    del arrays


def test_same_size_other_shape_and_dtype():
    a = POOLED_EMPTY((2048, 512), np.float64)  # 8 MiB
    address = a.ctypes.data
    del a
    b = POOLED_EMPTY((1024, 2048), np.float32)
    assert b.ctypes.data == address and b.dtype == np.float32 and b.flags.c_contiguous


def test_release_and_the_idle_cap(monkeypatch):
    monkeypatch.setattr(_alloc, "POOL_MAX_BYTES", 8 << 20)
    arrays = [POOLED_EMPTY((n, 1 << 18), np.float32) for n in (1, 2, 3, 4)]  # 1, 2, 3, 4 MiB
    del arrays
    new = POOLED_EMPTY((5, 1 << 18), np.float32)  # new memory: idle beyond 8 MiB is dropped
    assert _alloc.pooled_bytes()[1] <= 8 << 20
    del new
    _alloc.release()
    assert _alloc.pooled_bytes()[1] == 0


def _train_steps(seed=0):
    kg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((512, 784)).astype(np.float32)
    y = rng.integers(0, 10, 512)
    model = nn.Sequential(nn.Linear(784, 1024, activation="relu"), nn.Dropout(0.2),
                          nn.Linear(1024, 10))
    opt = kg.optim.Adam(model.parameters())
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(kg.Tensor(x)), kg.Tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    grads = [p.grad for p in model.parameters()]
    return losses, [p.data.copy() for p in model.parameters()], grads


def test_training_with_the_pool_equals_training_without(monkeypatch):
    plain = _train_steps()
    monkeypatch.setattr(_alloc, "empty", POOLED_EMPTY)
    pooled = _train_steps()
    assert plain[0] == pooled[0]
    for a, b in zip(plain[1], pooled[1]):
        np.testing.assert_array_equal(a, b)
    # every gradient owns its memory: no two share a buffer
    owners = [id(g.data if g.data.base is None else g.data.base) for g in pooled[2]]
    assert len(set(owners)) == len(owners)
