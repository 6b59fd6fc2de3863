"""The layer and autograd API, in PyTorch's shape (modules, losses, functional, init,
utils), with Keras-style training on every Module (compile, fit, evaluate, predict) and its
callbacks."""
from . import functional, init, utils
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
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    Module,
    ModuleList,
    MSELoss,
    NLLLoss,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    init_bound,
)

__all__ = ["functional", "init", "utils", "Module", "Parameter", "Linear", "ReLU",
           "LeakyReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax", "Identity",
           "Flatten", "Dropout", "Sequential", "ModuleList", "CrossEntropyLoss", "NLLLoss",
           "BCELoss", "BCEWithLogitsLoss", "MSELoss", "init_bound", "Callback", "History",
           "EarlyStopping", "ModelCheckpoint", "CSVLogger", "LearningRateScheduler",
           "TerminateOnNaN"]
