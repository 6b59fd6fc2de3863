"""torch.utils.data's names: kernelgrad.data's DataLoader and TensorDataset."""
from ..data import DataLoader, TensorDataset

__all__ = ["DataLoader", "TensorDataset"]
