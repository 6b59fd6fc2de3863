"""kernelgrad.optim: the optimizers and learning-rate schedules (defined in nn/optim.py)."""
from .nn.optim import (SGD, Adagrad, Adam, AdamW, Optimizer, ReduceLROnPlateau, RMSprop,
                       StepLR)

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "StepLR",
           "ReduceLROnPlateau"]
