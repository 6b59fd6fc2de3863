"""pytest-benchmark suites: the same cases as `python -m bench`, ours and the baseline.

    python -m pytest bench/ --benchmark-group-by=param:case
"""
import numpy as np
import pytest

from .cases import all_cases

CASES = all_cases(quick=True)


@pytest.fixture(scope="module")
def inputs():
    """Each case's inputs, built once per module and indexed like CASES."""
    rng = np.random.default_rng(0)
    return [case.make(rng) for case in CASES]


@pytest.mark.parametrize("impl", ["kernelgrad", "numpy"])
@pytest.mark.parametrize("index", range(len(CASES)),
                         ids=[f"{c.op} {c.shape}".replace(" ", "_") for c in CASES])
def test_case(benchmark, inputs, index, impl):
    case, data = CASES[index], inputs[index]
    if impl == "kernelgrad":
        error = case.check(data, case.ours(data))
        assert error <= case.tolerance, f"{case.op} {case.shape}: relative error {error:.3g}"
        benchmark(case.ours, data)
    else:
        benchmark(case.baseline, data)
