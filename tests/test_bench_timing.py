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
