"""pytest-benchmark suites: the same cases as `python -m bench`, ours and the baseline.

    python -m pytest bench/ --benchmark-group-by=param:case
"""
import numpy as np
import pytest

from .cases import all_cases

CASES = all_cases(quick=True)
IDS = [f"{c.op} {c.shape}".replace(" ", "_") for c in CASES]


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    return {id_: case.make(rng) for id_, case in zip(IDS, CASES)}


@pytest.mark.parametrize("impl", ["kernelgrad", "numpy"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_case(benchmark, inputs, case, impl):
    data = inputs[f"{case.op} {case.shape}".replace(" ", "_")]
    if impl == "kernelgrad":
        error = case.check(data, case.ours(data))
        assert error <= case.tolerance, f"{case.op} {case.shape}: relative error {error:.3g}"
        benchmark(case.ours, data)
    else:
        benchmark(case.baseline, data)
