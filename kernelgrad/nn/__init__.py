"""The layer and autograd API, in PyTorch's shape: modules, losses, functional, fit()."""
from . import functional
from .modules import (
                      GELU,
                      BCEWithLogitsLoss,
                      CrossEntropyLoss,
                      Dropout,
                      Flatten,
                      LeakyReLU,
                      Linear,
                      Module,
                      MSELoss,
                      Parameter,
                      ReLU,
                      Sequential,
                      Sigmoid,
                      Softmax,
                      Tanh,
                      init_bound,
)
from .train import Callback, EarlyStopping, History, evaluate, fit, predict

__all__ = ["functional", "Module", "Parameter", "Linear", "ReLU", "LeakyReLU", "Sigmoid",
           "Tanh", "GELU", "Softmax", "Flatten", "Dropout", "Sequential", "CrossEntropyLoss",
           "BCEWithLogitsLoss", "MSELoss", "init_bound", "fit", "evaluate", "predict",
           "History", "Callback", "EarlyStopping"]
