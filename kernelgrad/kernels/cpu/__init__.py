"""Numba CPU kernels. Each takes valid, C-contiguous arrays and writes into `out`."""
