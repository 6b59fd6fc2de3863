"""`kernelgrad train`: train an MLP with early stopping and report its test accuracy.

Defaults: the digits (shipped with kernelgrad), 64 -> 128 -> 128 -> 10 with ReLU and
dropout 0.2, Adam (lr 1e-3), batch 64, a stratified 80/20 train/test split, early stopping
on a 10% validation split of the training part. Writes the checkpoint (model.safetensors)
and a PNG of the curves to --out.

Every flag is checked by argparse and the output folder is made before any data is read;
a user error ends with one line on stderr and exit status 2, never a traceback.
"""
import argparse
import math
import os
import sys
import time

import numpy as np

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad")
DATASETS = ("digits", "passfail", "mnist")
ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh", "gelu")


class UserError(Exception):
    """A problem with what the user asked for: reported in one line."""


def _integer(low, what):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{what} (>= {low}), got {value}")
        return value
    return parse


def _real(low, high=None, high_open=False, low_open=True):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be finite, got {text}")
        if value < low or (low_open and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low}, "
                                             f"got {value}")
        if high is not None and (value > high or (high_open and value == high)):
            raise argparse.ArgumentTypeError(f"must be {'<' if high_open else '<='} {high}, "
                                             f"got {value}")
        return value
    return parse


def _seed(text):
    value = _integer(0, "a seed is a non-negative integer")(text)
    if value >= 2 ** 64:
        raise argparse.ArgumentTypeError(f"a seed is below 2**64, got {value}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(prog="kernelgrad", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train an MLP and report its test accuracy",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter,
                                description=__doc__.split("\n\n")[1])
    train.add_argument("--dataset", choices=DATASETS, default="digits",
                       help="digits: 8x8 images shipped with kernelgrad; passfail: the "
                            "lecture's generated two-feature data; mnist: IDX files in "
                            "--data-dir")
    train.add_argument("--data-dir", help="directory of the MNIST/Fashion-MNIST IDX files "
                       "(--dataset mnist only)")
    train.add_argument("--hidden", type=_integer(1, "a layer width is a positive integer"),
                       nargs="*", default=[128, 128], help="hidden layer widths")
    train.add_argument("--activation", default="relu", choices=ACTIVATIONS,
                       help="hidden layers' activation")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="optimizer")
    train.add_argument("--lr", type=_real(0.0), default=1e-3, help="learning rate")
    train.add_argument("--batch-size", type=_integer(1, "a batch size is a positive integer"),
                       default=64, help="samples per training step")
    train.add_argument("--dropout", type=_real(0.0, 1.0, high_open=True, low_open=False),
                       default=0.2, help="drop probability after each hidden layer")
    train.add_argument("--epochs", type=_integer(1, "train at least one epoch"), default=100,
                       help="most epochs to train")
    train.add_argument("--patience", type=_integer(0, "patience is a count of epochs"),
                       default=10, help="epochs without a better val_loss before stopping")
    train.add_argument("--seed", type=_seed, default=0,
                       help="seed of the split, the initial weights, dropout and shuffling")
    train.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                       help="where to train (cuda: CuPy and an NVIDIA GPU)")
    train.add_argument("--out", default="kernelgrad-run",
                       help="directory for model.safetensors and curves.png (made if absent)")
    train.add_argument("--no-capture", dest="capture", action="store_false",
                       help="run every step eagerly instead of replaying the recorded step "
                            "(the results are the same bit for bit; for comparison)")
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                       help="0 silent, 1 a line per epoch, 2 also a progress bar on a terminal")
    return parser


def check_out(path):
    """Make the output directory now, so a bad --out fails before training."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--out {path} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise UserError(f"--out {path}: cannot make the directory ({error.strerror})") \
            from None
    if not os.access(path, os.W_OK):
        raise UserError(f"--out {path}: the directory is not writable")


def load_dataset(name, data_dir, seed):
    """(x_train, x_test, y_train, y_test) for a dataset name."""
    from kernelgrad import data
    if name == "mnist":
        if not data_dir:
            raise UserError("--dataset mnist needs --data-dir (the directory of the IDX files)")
        try:
            x_train, y_train = data.load_mnist(data_dir, "train")
            x_test, y_test = data.load_mnist(data_dir, "test")
        except (OSError, ValueError) as error:
            raise UserError(str(error)) from None
        return x_train, x_test, y_train, y_test
    if data_dir:
        raise UserError(f"--data-dir is for --dataset mnist; {name} needs no files")
    x, y = data.load_digits() if name == "digits" else data.load_passfail(seed=seed)
    return split(x, y, 0.2, seed, "test")


def split(x, y, fraction, seed, what):
    """A stratified split whose both parts hold examples, or a UserError saying why not."""
    from kernelgrad import data
    held = int(round(len(y) * fraction))
    if not 0 < held < len(y) or len(np.unique(y)) > held:
        raise UserError(f"{len(y)} examples are too few for a {what} split of "
                        f"{fraction:.0%} with {len(np.unique(y))} classes: each part needs "
                        "examples of every class")
    return data.train_test_split(x, y, test_size=fraction, seed=seed)


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


def plot_curves(history, path, title, restored_epoch=None, test_accuracy=None):
    """Loss (log scale) and accuracy per epoch, train and validation; the restored epoch
    marked and the test accuracy in the legend."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no curves.png", file=sys.stderr)
        return None
    epochs = np.arange(1, len(history.epoch) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, axis in (("loss", left), ("accuracy", right)):
        for prefix, label in (("", "train"), ("val_", "validation")):
            if prefix + name in history.history:
                axis.plot(epochs, history[prefix + name], label=label)
        if restored_epoch is not None:
            axis.axvline(restored_epoch + 1, color="gray", ls="--", lw=1,
                         label=f"restored (epoch {restored_epoch + 1})")
        if name == "accuracy" and test_accuracy is not None:
            axis.axhline(test_accuracy, color="tab:green", ls=":", lw=1,
                         label=f"test {test_accuracy:.4f}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    left.set_yscale("log")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def train(args):
    import kernelgrad as kg
    from kernelgrad import nn
    device = kg.devices.resolve(args.device)
    if kg.distributed.launched_size() > 1:  # under mpiexec: data-parallel over the ranks
        kg.distributed.init(device=device)
    lead = kg.distributed.rank() == 0  # only rank 0 prints and writes
    if lead:
        check_out(args.out)
    kg.manual_seed(args.seed)
    x_train, x_test, y_train, y_test = load_dataset(args.dataset, args.data_dir, args.seed)
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    model = build_mlp(x_train.shape[1], args.hidden, n_classes, args.activation,
                      args.dropout).to(device)
    model.compile(make_optimizer(args.optimizer, model.parameters(), args.lr),
                  nn.CrossEntropyLoss(), metrics=["accuracy"])
    # Hold out a stratified 10% of the training part for early stopping.
    x_fit, x_val, y_fit, y_val = split(x_train, y_train, 0.1, args.seed, "validation")
    loader = kg.data.DataLoader(x_fit, y_fit, batch_size=args.batch_size, shuffle=True,
                                seed=args.seed)
    stopper = nn.EarlyStopping("val_loss", patience=args.patience, restore_best_weights=True,
                               verbose=0)
    if args.verbose and lead:
        world = kg.distributed.world_size()
        if world > 1:
            print(f"data-parallel over {world} processes ({kg.distributed._world.name}); "
                  f"batch {args.batch_size} per process", flush=True)
        print(f"{args.dataset}: {len(x_fit)} train, {len(x_val)} validation, {len(x_test)} "
              f"test; model {model}", flush=True)
    start = time.perf_counter()
    history = model.fit(loader, validation_data=(x_val, y_val), epochs=args.epochs,
                        callbacks=[stopper], verbose=args.verbose, capture=args.capture)
    seconds = time.perf_counter() - start
    test = model.evaluate(x_test, y_test, return_dict=True)
    per_epoch = np.median(history.epoch_times) * 1e3
    if stopper.best_epoch is None:
        best = (f"val_loss never improved (it was {history['val_loss'][-1]:.4g}); the last "
                "epoch's weights are kept")
    else:
        best = (f"best val_loss {stopper.best:.4f} at epoch {stopper.best_epoch + 1}, "
                "weights restored")
    if not lead:
        return test["accuracy"]
    print(f"trained {len(history.epoch)} epochs in {seconds:.2f} s (median training loop "
          f"{per_epoch:.1f} ms per epoch); {best}")
    print(f"test accuracy {test['accuracy']:.4f}  test loss {test['loss']:.4f}")
    checkpoint = os.path.join(args.out, "model.safetensors")
    kg.save(model, checkpoint)
    title = (f"kernelgrad train: {args.dataset}, {x_train.shape[1]}-"
             f"{'-'.join(map(str, args.hidden))}-{n_classes} {args.activation}, dropout "
             f"{args.dropout}, {args.optimizer} lr {args.lr:g}, batch {args.batch_size}, "
             f"seed {args.seed}")
    curves = plot_curves(history, os.path.join(args.out, "curves.png"), title,
                         stopper.best_epoch, test["accuracy"])
    print(f"wrote {checkpoint}" + (f" and {curves}" if curves else ""))
    return test["accuracy"]


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            train(args)
    except UserError as error:
        parser.exit(2, f"kernelgrad: error: {error}\n")
    except RuntimeError as error:
        if "not usable" not in str(error):  # resolve()'s message for a missing GPU
            raise
        parser.exit(2, f"kernelgrad: error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
