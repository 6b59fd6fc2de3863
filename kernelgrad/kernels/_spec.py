"""Constants that the Python front-ends, the Numba kernels and the CUDA C share: each has
its one definition here. The CUDA sources get them as #define lines that cuda/_module.py
puts before the source text (cuda_defines()), so no .cu file repeats a number.
No Numba or CuPy import here: everything may import this module.
"""

# Activation ids: 0 is none (the identity), then ACTIVATIONS in order.
ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "gelu")
ACTIVATION_IDS = {None: 0, **{name: i + 1 for i, name in enumerate(ACTIVATIONS)}}
ACT_NONE, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_LEAKY_RELU, ACT_GELU = range(6)

# GEMM implementations, by device; "auto" picks one of them.
CPU_IMPLS = ("numba", "blas")
CUDA_IMPLS = ("cuda-tiled", "cuda-regblock", "cuda-tf32", "cublas")

# Our CUDA GEMM rungs: M's tiles run along grid.x (up to 2**31 - 1 blocks), N's along
# grid.y (up to 65535 tiles of output columns). Their dimensions are int32 and their loops
# step past the last index by up to a tile ((K + 31) / 32, k0 += 32, idx + 4 <= limit), so
# a dimension must leave that much headroom below 2**31: 128 covers every step.
CUDA_GEMM_MAX_DIM = 2 ** 31 - 1 - 128
CUDA_GEMM_MAX_COLUMN_TILES = 65535
CUDA_GEMM_TILE_N = {"cuda-tiled": 32, "cuda-regblock": 128, "cuda-tf32": 128}


def cuda_gemm_refusal(impl, M, N, K):
    """Why our CUDA rung `impl` cannot take an M x N x K product, or None (cuBLAS and the
    CPU take any)."""
    if impl not in CUDA_GEMM_TILE_N:
        return None
    if max(M, N, K) > CUDA_GEMM_MAX_DIM:
        return (f"its dimensions are int32 with headroom for a tile: at most "
                f"{CUDA_GEMM_MAX_DIM} (M, N, K = {M}, {N}, {K})")
    columns = CUDA_GEMM_MAX_COLUMN_TILES * CUDA_GEMM_TILE_N[impl]
    if N > columns:
        return f"it takes at most {columns} output columns (N = {N})"
    return None


# The CUDA optimizer kernels take this many parameters per launch (PyTorch's foreach).
OPTIM_TENSORS_PER_LAUNCH = 8
# softmax_cross_entropy_cached: float4s of its row each thread holds in registers, so rows
# of up to 1024 threads x 4 x this many classes are read from memory once.
SOFTMAX_CACHED_FLOAT4S = 8
SOFTMAX_WARP_MAX_CLASSES = 1024  # a warp per row up to here


def cuda_defines():
    """The #define lines every CUDA source is compiled with."""
    lines = [f"#define ACT_{name.upper()} {ACTIVATION_IDS[name]}" for name in ACTIVATIONS]
    lines.append(f"#define ACT_NONE {ACT_NONE}")
    tensors = " ".join(f"X({i})" for i in range(OPTIM_TENSORS_PER_LAUNCH))
    lines += [f"#define TENSORS {OPTIM_TENSORS_PER_LAUNCH}",
              f"#define FOR_EACH_TENSOR(X) {tensors}",
              f"#define ITEMS {SOFTMAX_CACHED_FLOAT4S}"]
    return "\n".join(lines) + "\n"
