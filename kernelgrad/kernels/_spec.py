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
CUDA_IMPLS = ("cuda-tiled", "cuda-regblock", "cuda-tf32", "cuda-bf16", "cublas")

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
