"""`kernelgrad train`: train an MLP with early stopping and report its test accuracy.

Defaults: the digits, 64 -> 128 -> 128 -> 10 with ReLU and dropout 0.2, Adam (lr 1e-3),
batch 64, a stratified 80/20 train/test split, early stopping on a 10% validation split
of the training part. Writes the checkpoint (.npz) and a PNG of the curves to --out.
"""
import argparse
import os
import sys
import time

import numpy as np

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
DATASETS = ("digits", "passfail", "mnist")


def build_parser():
    parser = argparse.ArgumentParser(prog="kernelgrad", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train an MLP and report its test accuracy",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--dataset", choices=DATASETS, default="digits")
    train.add_argument("--data-dir", help="directory of the MNIST/Fashion-MNIST IDX files")
    train.add_argument("--hidden", type=int, nargs="*", default=[128, 128],
                       help="hidden layer widths")
    train.add_argument("--activation", default="relu",
                       choices=("relu", "leaky_relu", "sigmoid", "tanh", "gelu"))
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--batch-size", type=int, default=64)
    train.add_argument("--dropout", type=float, default=0.2)
    train.add_argument("--epochs", type=int, default=100)
    train.add_argument("--patience", type=int, default=10,
                       help="epochs without a better val_loss before stopping")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    train.add_argument("--out", default="kernelgrad-run",
                       help="directory for model.npz and curves.png")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    return parser


def load_dataset(name, data_dir, seed):
    """(x_train, x_test, y_train, y_test) for a dataset name."""
    from kernelgrad import data
    if name == "mnist":
        if not data_dir:
            raise SystemExit("--dataset mnist needs --data-dir (the directory of the IDX files)")
        x_train, y_train = data.load_mnist(data_dir, "train")
        x_test, y_test = data.load_mnist(data_dir, "test")
        return x_train, x_test, y_train, y_test
    x, y = data.load_digits() if name == "digits" else data.load_passfail(seed=seed)
    return data.train_test_split(x, y, test_size=0.2, seed=seed)


def build_mlp(n_in, hidden, n_out, activation, dropout):
    from kernelgrad import nn
    layers, width = [], n_in
    for h in hidden:
        layers.append(nn.Linear(width, h, activation=activation))
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def make_optimizer(name, params, lr):
    from kernelgrad import optim
    classes = {"adam": optim.Adam, "adamw": optim.AdamW, "sgd": optim.SGD,
               "rmsprop": optim.RMSprop, "adagrad": optim.Adagrad}
    return classes[name](params, lr=lr)


def plot_curves(history, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no curves.png", file=sys.stderr)
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, axis in (("loss", left), ("accuracy", right)):
        for prefix, label in (("", "train"), ("val_", "validation")):
            if prefix + name in history.history:
                axis.plot(np.arange(1, len(history.epoch) + 1), history[prefix + name],
                          label=label)
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def train(args):
    import kernelgrad as kg
    from kernelgrad import nn
    device = kg.devices.resolve(args.device)
    kg.manual_seed(args.seed)
    x_train, x_test, y_train, y_test = load_dataset(args.dataset, args.data_dir, args.seed)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    model = build_mlp(x_train.shape[1], args.hidden, n_classes, args.activation,
                      args.dropout).to(device)
    optimizer = make_optimizer(args.optimizer, model.parameters(), args.lr)
    loss_fn = nn.CrossEntropyLoss()
    # Hold out a stratified 10% of the training part for early stopping.
    x_fit, x_val, y_fit, y_val = kg.data.train_test_split(x_train, y_train, 0.1, args.seed)
    loader = kg.data.DataLoader(x_fit, y_fit, batch_size=args.batch_size, shuffle=True,
                                seed=args.seed)
    stopper = nn.EarlyStopping("val_loss", patience=args.patience, restore_best_weights=True)
    print(f"{args.dataset}: {len(x_fit)} train, {len(x_val)} validation, {len(x_test)} test; "
          f"model {model}", flush=True)
    start = time.perf_counter()
    history = nn.fit(model, loss_fn, optimizer, loader, val_data=(x_val, y_val),
                     epochs=args.epochs, callbacks=[stopper], verbose=args.verbose)
    seconds = time.perf_counter() - start
    test = nn.evaluate(model, loss_fn, x_test, y_test)
    per_epoch = np.median(history.epoch_times) * 1e3
    print(f"trained {len(history.epoch)} epochs in {seconds:.2f} s (median training loop "
          f"{per_epoch:.1f} ms per epoch); best val_loss {stopper.best:.4f} at epoch "
          f"{stopper.best_epoch + 1}, weights restored")
    print(f"test accuracy {test['accuracy']:.4f}  test loss {test['loss']:.4f}")
    os.makedirs(args.out, exist_ok=True)
    checkpoint = os.path.join(args.out, "model.npz")
    kg.save(model, checkpoint)
    curves = plot_curves(history, os.path.join(args.out, "curves.png"))
    print(f"wrote {checkpoint}" + (f" and {curves}" if curves else ""))
    return test["accuracy"]


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "train":
        train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
