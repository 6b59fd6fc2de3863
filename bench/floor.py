"""The GEMM floor of an MLP training step, its GEMMs alone through NumPy's BLAS: timed by
bench.steps and bench.step_profile, and by forced_blas.py's child with OpenBLAS forced."""
import numpy as np


def gemm_floor(batch, widths):
    """The step's GEMMs through OpenBLAS: forward x@W per layer, then dW = h^T @ dz per
    layer and dh = dz @ W^T for every layer but the first."""
    rng = np.random.default_rng(0)
    acts = [rng.standard_normal((batch, w), dtype=np.float32) for w in widths]
    weights = [rng.standard_normal((i, o), dtype=np.float32) for i, o in zip(widths, widths[1:])]

    def gemms():
        for h, w in zip(acts, weights):
            h @ w
        for i, w in enumerate(weights):
            acts[i].T @ acts[i + 1]
            if i > 0:
                acts[i + 1] @ w.T
    return gemms
