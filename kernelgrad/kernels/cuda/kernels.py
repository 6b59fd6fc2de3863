"""The extern "C" kernels each CUDA source must define: what the launchers call, checked
against the compiled PTX by compile_check."""
from ..cpu._math import ACTIVATIONS

KERNELS = {
    "activations": tuple(f"{a}_{d}" for a in ACTIVATIONS for d in ("forward", "backward"))
    + ("bias_activation",),
    "dropout": ("dropout",),
    "losses": ("softmax_xent_warp", "softmax_xent_cached_vec", "softmax_xent_cached_scalar",
               "softmax_xent_block", "bce_with_logits", "mse"),
    "bias_grad": ("bias_grad_bands", "sum_bands"),
    "optim": ("sgd_step", "adagrad_step", "rmsprop_step", "adam_step"),
    "matmul": ("matmul_tiled", "matmul_regblock"),
    "matmul_tc": tuple(f"matmul_{kind}_{ab}" for kind in ("tf32", "bf16")
                       for ab in ("nn", "nt", "tn", "tt")),
}
