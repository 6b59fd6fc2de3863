"""torch.cuda's two questions a training script asks."""
from .devices import cuda_available as is_available

__all__ = ["is_available", "device_count"]


def device_count():
    """GPUs CuPy sees (0 without CuPy or a driver)."""
    if not is_available():
        return 0
    import cupy
    return cupy.cuda.runtime.getDeviceCount()
