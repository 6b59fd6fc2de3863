"""pytest-benchmark suites: the same cases as `python -m bench` on the CPU, ours and each
baseline.

    python -m pytest bench/ --benchmark-group-by=param:index
"""
import numpy as np
import pytest

from .backend import Backend
from .cases import large_cases, small_cases

BACKEND = Backend("cpu")
CASES = large_cases(BACKEND, quick=True) + small_cases(BACKEND)
# (a baseline timed in another process, the forced OpenBLAS, is left to python -m bench)
RUNS = [(i, library) for i, case in enumerate(CASES)
        for library in ("kernelgrad", *case.baselines)
        if not hasattr(case.baselines.get(library), "samples")]


@pytest.fixture(scope="module")
def inputs():
    """Each case's inputs, built once per module and indexed like CASES."""
    rng = np.random.default_rng(0)
    return [case.make(rng, BACKEND) for case in CASES]


@pytest.mark.parametrize("index, library", RUNS,
                         ids=[f"{CASES[i].name}_{CASES[i].shape}_{lib}".replace(" ", "_")
                              for i, lib in RUNS])
def test_case(benchmark, inputs, index, library):
    case, data = CASES[index], inputs[index]
    if library == "kernelgrad":
        error = case.check(data, case.ours(data), BACKEND)
        assert error <= case.tolerance, f"{case.name} {case.shape}: relative error {error:.3g}"
        benchmark(case.ours, data)
    else:
        benchmark(case.baselines[library], data)
