"""The layer and autograd API, in PyTorch's shape (modules, losses, functional), with
Keras-style training on every Module (compile, fit, evaluate, predict) and its callbacks."""
from . import functional
from .callbacks import (
                        Callback,
                        CSVLogger,
                        EarlyStopping,
                        History,
                        LearningRateScheduler,
                        ModelCheckpoint,
                        TerminateOnNaN,
)
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

__all__ = ["functional", "Module", "Parameter", "Linear", "ReLU", "LeakyReLU", "Sigmoid",
           "Tanh", "GELU", "Softmax", "Flatten", "Dropout", "Sequential", "CrossEntropyLoss",
           "BCEWithLogitsLoss", "MSELoss", "init_bound", "Callback", "History",
           "EarlyStopping", "ModelCheckpoint", "CSVLogger", "LearningRateScheduler",
           "TerminateOnNaN"]
