"""The public kernel functions, one module per op family. Each function checks its
arguments once (raising before any kernel runs), allocates its outputs, and runs the
Numba kernel (cpu/<family>.py) for NumPy arrays or the CUDA kernel (cuda/<family>.cu)
for CuPy arrays. Nothing below these functions checks its arguments again."""
