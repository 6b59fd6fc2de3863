"""The kernel library: one public function per op, on NumPy arrays (Numba CPU kernels,
float32 or float64) and CuPy arrays (CUDA kernels, float32).

Every function checks its arguments before any kernel runs and returns new arrays (the
optimizer steps update param and its state in place). An array a function returns
belongs to the caller: no other array shares its memory. (Large ones are views of
buffers the library reuses, and it reuses one only once nothing refers to it.)
Gradients returned by the loss functions are those of the *sum* of the per-element losses.
"""
from . import checks, reference
from ._spec import ACTIVATIONS
from .ops.activations import activation, activation_backward
from .ops.bias_grad import bias_grad
from .ops.dropout import dropout, dropout_backward
from .ops.losses import binary_cross_entropy_with_logits, mse
from .ops.machine import check_device_errors, cpu_info
from .ops.matmul import (
    forget_impl_choices,
    gemm_shape_class,
    impl_choices,
    linear,
    linear_backward,
    linear_backward_shape_class,
    matmul,
)
from .ops.optim import adagrad_step, adam_step, rmsprop_step, sgd_step
from .ops.softmax_cross_entropy import softmax_cross_entropy

__all__ = ["ACTIVATIONS", "matmul", "linear", "linear_backward", "gemm_shape_class",
           "linear_backward_shape_class", "impl_choices", "forget_impl_choices",
           "activation", "activation_backward", "softmax_cross_entropy",
           "binary_cross_entropy_with_logits", "mse", "dropout", "dropout_backward",
           "bias_grad", "sgd_step", "adagrad_step", "rmsprop_step", "adam_step",
           "check_device_errors", "cpu_info", "checks", "reference"]
