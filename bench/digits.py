"""The digits MLP on one split: kernelgrad, PyTorch (CPU) and scikit-learn, in one run.

    python -m bench.digits [--epochs 40] [--repeats 3]

All three train 64 -> 128 -> 128 -> 10 (ReLU) on the same stratified 80/20 split;
kernelgrad and PyTorch use dropout 0.2, Adam (lr 1e-3) and batch 64 for a fixed number of
epochs, so their per-epoch training-loop times compare like for like; scikit-learn's
MLPClassifier(hidden_layer_sizes=(128, 128)) runs with its defaults. Prints test accuracy,
total training time and the median epoch time, and the ratio PyTorch / kernelgrad.
"""
import argparse
import time

import numpy as np

import kernelgrad as kg
from kernelgrad import nn
from kernelgrad.cli import build_mlp

HIDDEN, BATCH, DROPOUT, LR = (128, 128), 64, 0.2, 1e-3


def run_kernelgrad(data, epochs, seed):
    x_train, x_test, y_train, y_test = data
    kg.manual_seed(seed)
    model = build_mlp(x_train.shape[1], HIDDEN, 10, "relu", DROPOUT)  # kernelgrad train's MLP
    loader = kg.data.DataLoader(x_train, y_train, batch_size=BATCH, shuffle=True, seed=seed)
    model.compile(kg.optim.Adam(model.parameters(), lr=LR), nn.CrossEntropyLoss(),
                  metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(loader, epochs=epochs, verbose=0)
    total = time.perf_counter() - start
    accuracy = model.evaluate(x_test, y_test, return_dict=True)["accuracy"]
    return accuracy, total, float(np.median(history.epoch_times))


def run_torch(data, epochs, seed):
    import torch
    x_train, x_test, y_train, y_test = (torch.from_numpy(a) for a in data)
    torch.manual_seed(seed)
    layers, width = [], x_train.shape[1]
    for h in HIDDEN:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU(), torch.nn.Dropout(DROPOUT)]
        width = h
    model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    epoch_times = []
    start = time.perf_counter()
    for _ in range(epochs):
        epoch_start = time.perf_counter()
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(x_train), BATCH):
            index = order[i:i + BATCH]
            optimizer.zero_grad()
            outputs = model(x_train[index])
            loss = loss_fn(outputs, y_train[index])
            loss.backward()
            optimizer.step()
            # the same per-batch bookkeeping fit() does (loss and accuracy for the log)
            loss.item()
            (outputs.argmax(1) == y_train[index]).sum().item()
        epoch_times.append(time.perf_counter() - epoch_start)
    total = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    return accuracy, total, float(np.median(epoch_times))


def run_sklearn(data, seed):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    x_train, x_test, y_train, y_test = data
    model = MLPClassifier(hidden_layer_sizes=HIDDEN, random_state=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x_train, y_train)
    total = time.perf_counter() - start
    return model.score(x_test, y_test), total, total / model.n_iter_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per library; the median of each number is shown")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    x, y = kg.data.load_digits()
    data = kg.data.train_test_split(x, y, test_size=0.2, seed=args.seed)
    print(f"digits: {len(data[0])} train, {len(data[1])} test (stratified, seed {args.seed}); "
          f"{args.epochs} epochs, batch {BATCH}, {args.repeats} runs each, medians")
    run_kernelgrad(data, 1, args.seed)  # compile or load the Numba kernels before timing
    runs = {
        name: [run(data, args.seed + r) for r in range(args.repeats)]
        for name, run in (("kernelgrad", lambda d, s: run_kernelgrad(d, args.epochs, s)),
                          ("pytorch", lambda d, s: run_torch(d, args.epochs, s)),
                          ("scikit-learn", run_sklearn))
    }
    print(f"{'library':<14}{'test acc':>10}{'train s':>10}{'epoch ms':>10}")
    medians = {}
    for name, results in runs.items():
        accuracy, total, epoch = (float(np.median(column)) for column in zip(*results))
        medians[name] = epoch
        print(f"{name:<14}{accuracy:>10.4f}{total:>10.2f}{epoch * 1e3:>10.2f}")
    print(f"epoch time, PyTorch / kernelgrad: {medians['pytorch'] / medians['kernelgrad']:.2f}x "
          "(>= 1.0 means kernelgrad is as fast or faster)")


if __name__ == "__main__":
    main()
