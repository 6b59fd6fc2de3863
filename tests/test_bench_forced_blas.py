"""The benchmark's forced OpenBLAS anchor: which kernel is forced where, and the child
process that times it."""
import pytest

from bench.backend import cpu_time_all
from bench.forced_blas import ForcedOpenBLAS, coretype_to_force, openblas_picked

AVX512 = {"avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}
AVX2 = {"avx2", "fma"}


@pytest.mark.parametrize("vector_bytes, fma, picked, flags, machine, expected", [
    (64, True, "Haswell", AVX512, "x86_64", "SkylakeX"),     # the Zen 5 machine's case
    (64, True, "Zen", AVX512, "x86_64", "SkylakeX"),
    (64, True, "SkylakeX", AVX512, "x86_64", None),          # already the widest
    (64, True, "SapphireRapids", AVX512, "x86_64", None),
    (64, True, "Sandybridge", AVX2, "x86_64", "Haswell"),    # the widest the CPU can run
    (64, True, "Haswell", AVX2, "x86_64", None),              # no AVX-512 to force
    (32, True, "Haswell", AVX512, "x86_64", None),            # haswell target: as wide
    (32, True, "SkylakeX", AVX512, "x86_64", None),           # wider than ours: kept
    (32, True, "Sandybridge", AVX2, "x86_64", "Haswell"),
    (16, False, "Prescott", AVX2, "x86_64", None),            # baseline target
    (16, False, "NEOVERSEN1", set(), "aarch64", None),        # not x86
    (64, True, None, AVX512, "x86_64", None),                 # no OpenBLAS loaded
])
def test_the_kernel_forced(vector_bytes, fma, picked, flags, machine, expected):
    assert coretype_to_force(vector_bytes, fma, picked, flags, machine) == expected


def test_a_library_timed_elsewhere_gets_the_block_budget():
    asked = []

    class Remote:
        def samples(self, **budget):
            asked.append(budget)
            return [1.0] * budget["min_repeats"]

    timings = cpu_time_all({"remote": Remote()}, rounds=3, min_repeats=7, budget_s=0.3,
                           settle_s=0, max_repeats=30)
    assert asked == [dict(min_repeats=3, budget_s=pytest.approx(0.1), settle_s=0,
                          max_repeats=10)] * 3
    assert timings["remote"].median == 1.0 and timings["remote"].repeats == 9


def test_the_child_runs_the_kernel_asked_for_and_times_it():
    picked = openblas_picked()
    if picked is None:
        pytest.skip("NumPy's BLAS is not OpenBLAS, or threadpoolctl is missing")
    child = ForcedOpenBLAS(picked)  # the kernel it picked: one this CPU surely runs
    try:
        assert child.honoured, child.architecture
        budget = dict(min_repeats=4, budget_s=0.0, settle_s=0.0, max_repeats=10)
        for timer in (child.gemm(48, 40, 32, trans_a=True),
                      child.gemm(24, 20, 16, trans_b=True, dtype="float64"),
                      child.floor(8, (16, 12, 4))):
            times = timer.samples(**budget)
            assert len(times) >= 4 and all(t > 0 for t in times)
    finally:
        child.close()
    assert child.process.returncode == 0
