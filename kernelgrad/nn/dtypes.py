"""torch's dtype names, as the NumPy dtypes they are here (kg.float32 is np.float32).
A module of their own: `int`, `float` and `bool` would shadow the builtins anywhere else."""
import numpy as np

float32, float64, float16 = np.float32, np.float64, np.float16
int64, int32, int16, int8, uint8 = np.int64, np.int32, np.int16, np.int8, np.uint8
bool = np.bool_  # noqa: A001
long, int, float, double = np.int64, np.int32, np.float32, np.float64  # noqa: A001
