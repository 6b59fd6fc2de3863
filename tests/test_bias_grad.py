"""The bias gradient (column sums) against the reference, on every device."""
import numpy as np
import pytest

import kernelgrad.kernels as K
from kernelgrad.kernels import reference as R

from conftest import (
    DEVICE_DTYPES,
    ELEMENTWISE_RTOL,
    SPECIALS,
    assert_as_on_the_cpu,
    assert_close,
    gpu_sizes,
    gpu_test,
    on_device,
    to_host,
)


@pytest.mark.parametrize("device, dtype", DEVICE_DTYPES)
# (33, 1100) and (4096, 1000): too few column tiles to fill a GPU, so row bands, summed
@pytest.mark.parametrize("shape", [(1, 1), (7, 33), (1000, 127), (33, 1000), (33, 1100)]
                         + gpu_sizes(large=[(4096, 1000), (33, 70000)]))
def test_bias_grad(rng, device, dtype, shape):
    dy = rng.standard_normal(shape).astype(dtype)
    rtol = max(ELEMENTWISE_RTOL[dtype], 1e-6 if device == "cuda" else 0) * np.sqrt(shape[0])
    assert_close(to_host(K.bias_grad(on_device(dy, device))), R.bias_grad(dy), rtol,
                 scale=np.abs(dy).sum(0), what="bias_grad")


@gpu_test
def test_cuda_special_values_give_what_the_cpu_gives():
    dy = np.stack([np.roll(SPECIALS, i) for i in range(130)])  # two row bands, summed
    assert_as_on_the_cpu(to_host(K.bias_grad(on_device(dy, "cuda"))), K.bias_grad(dy),
                         "bias_grad")
