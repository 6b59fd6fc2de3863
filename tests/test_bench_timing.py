"""The benchmark's timer: libraries timed in blocks taken in turn, a burst of other work
in one block not moving a library's time."""
import pytest

from bench.backend import NOISY_SPREAD, cpu_time_all, paired_ratio, timing_of


def test_a_slow_block_does_not_move_the_median():
    fast, burst = [1.0, 1.0, 1.02], [10.0, 10.0, 10.0]
    timing = timing_of(None, [fast, burst, [1.1, 1.1, 1.1]])
    assert timing.median == pytest.approx(1.1)
    assert timing.repeats == 9
    assert timing.noisy and timing.spread > NOISY_SPREAD  # the burst still marks the row
    assert timing_of(fast + burst).median == pytest.approx(5.51)  # pooled: it would


def test_a_ratio_is_taken_round_by_round():
    """The host slowing down between rounds moves both functions' blocks alike: the
    paired ratio stays 1.1 where the ratio of the medians does not."""
    step = timing_of(None, [[1.1], [2.2], [3.3], [1.1]])
    floor = timing_of(None, [[1.0], [2.0], [3.0], [1.0]])
    assert step.blocks == (1.1, 2.2, 3.3, 1.1)
    assert paired_ratio(step, floor) == pytest.approx(1.1)
    drifted = timing_of(None, [[1.1], [1.1], [3.3], [3.3]])  # the same step, rounds apart
    assert drifted.median / floor.median == pytest.approx(1.466, rel=1e-3)


def test_libraries_are_timed_in_blocks_taken_in_turn():
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "ab"}
    timings = cpu_time_all(fns, rounds=3, min_repeats=6, budget_s=0, settle_s=0)
    # each block: a warm-up call and its share of the repeats
    assert calls == (["a"] * 3 + ["b"] * 3) * 3
    assert {name: t.repeats for name, t in timings.items()} == {"a": 6, "b": 6}


def test_work_before_each_call_is_not_timed():
    """A Prepared library's before_each runs before every call, the warm-up included,
    and its time is not the call's (inputs rewritten as a training step writes them)."""
    import time

    from bench.backend import Prepared, cpu_samples
    calls = []

    def rewrite():
        calls.append("rewrite")
        time.sleep(0.01)
    times = cpu_samples(Prepared(lambda: calls.append("call"), rewrite), min_repeats=4,
                        budget_s=0, settle_s=0)
    assert calls == ["rewrite", "call"] * 5
    assert len(times) == 4 and max(times) < 0.005


def test_a_memory_bound_row_is_measured_against_a_copy_timed_beside_it():
    """The roofline of a memory-bound CPU row is a copy of the same bytes over our time,
    round by round; the copy is neither a baseline nor the anchor. A kernel that is a copy
    of its bytes itself comes out near 100%, whatever the host's speed that minute."""
    import numpy as np

    from bench.backend import Backend
    from bench.cases import Case
    from bench.runner import COPY, paired_copy, run_case

    src = np.ones(1 << 13, np.float32)  # one core's copy and ours: no thread pool to wait on
    dst = np.empty_like(src)
    copy = paired_copy(Backend("cpu"), 2 * src.nbytes)
    copy()
    case = Case("copy", "a copy", "65536", lambda rng, be: {},
                lambda d: np.copyto(dst, src), {"NumPy": lambda d: np.copyto(dst, src)},
                lambda d, out, be: 0.0, 0.0, bytes_moved=lambda d: 2 * src.nbytes)
    row = run_case(case, Backend("cpu"), np.random.default_rng(0), bandwidth=1.0,
                   flop_rate=1.0)
    assert row["status"] == "ok" and row["anchor"] == "NumPy"
    assert COPY not in row["times"] and row["roofline_basis"].startswith("a copy")
    assert 0.3 < row["roofline"] < 3.0  # the same work: not the 1 B/s "bandwidth" given
    assert row["copy_s"] > 0


def test_a_memory_bound_row_gets_new_memory_every_round():
    """Where a buffer lies moved a kernel's time by up to 1.8x on a shared host, so each
    round of a memory-bound row moves its large arrays (and the paired copy's) to new
    memory: same values, arrays that were one object still one, PyTorch views following."""
    import numpy as np

    from bench.backend import ROUNDS, Backend
    from bench.cases import Case
    from bench.runner import PLACE_MIN_BYTES, PairedCopy, run_case

    x = np.arange(PLACE_MIN_BYTES // 4, dtype=np.float32)
    small = np.ones(4, np.float32)
    transposed = np.asfortranarray(x.reshape(512, 512))  # a layout the copy must keep
    seen = []

    def make(rng, be):
        d = {"x": x, "same": x, "params": [x, small], "small": small, "f": transposed}
        if be.torch is not None:
            d["tx"] = be.tensor(x)
        return d

    def ours(d):
        assert d["same"] is d["x"] and d["params"][0] is d["x"] and d["small"] is small
        assert d["x"][-1] == x[-1] and d["x"].sum() == x.sum()
        assert d["f"].flags.f_contiguous and np.array_equal(d["f"], transposed)
        if "tx" in d:
            assert d["tx"].data_ptr() == d["x"].ctypes.data
        seen.append(d["x"].ctypes.data)
    case = Case("copy", "a pass", "1 MiB", make, ours, {"NumPy": lambda d: d["x"].sum()},
                lambda d, out, be: 0.0, 0.0, bytes_moved=lambda d: d["x"].nbytes)
    row = run_case(case, Backend("cpu"), np.random.default_rng(0), bandwidth=1.0,
                   flop_rate=1.0)
    assert row["status"] == "ok"
    assert len(set(seen)) == ROUNDS  # one placement per round, x's own in the first

    copy = PairedCopy(PLACE_MIN_BYTES)
    before = copy.src.ctypes.data, copy.dst.ctypes.data
    copy.place()
    assert copy.src.ctypes.data not in before and copy.dst.ctypes.data not in before
