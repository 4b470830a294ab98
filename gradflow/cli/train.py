"""``gradflow train`` and ``gradflow eval``: the textbook MLP trained end to end on real data.

``gradflow train`` loads a dataset (the bundled digits by default), checks it, standardizes the
features with training-set statistics, trains ``MLP([features, *hidden, classes])`` with
softmax cross-entropy and prints one table row per epoch. ``--save`` writes a checkpoint after
every epoch (model, optimizer, epoch, feature scaling and the settings needed to rebuild the
model); ``--resume`` continues from one up to ``--epochs``; ``gradflow eval`` reports a saved
model's accuracy. Every input problem is raised as CommandError before any training starts.
"""
from __future__ import annotations

import argparse
import sys
import time


from . import CommandError

DEFAULTS = dict(dataset="digits", hidden=[256], activation="relu", epochs=20, batch_size=64,
                optimizer="adam", weight_decay=0.0, momentum=0.9, seed=0)
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.05}


def register(subparsers):
    from ..nn.activations import ACTIVATION_MODULES

    train = subparsers.add_parser("train", help="train an MLP on a dataset (the bundled digits by default)",
                                  description=__doc__.split("\n\n")[0])
    train.add_argument("--dataset", default=DEFAULTS["dataset"],
                       help="'digits' (bundled), 'mnist:DIR', 'fashion-mnist:DIR', a folder of IDX files, "
                            "or a .npz/.csv file (default: digits)")
    train.add_argument("--hidden", action="append", metavar="SIZES",
                       help="hidden layer sizes; repeat or give a comma list, e.g. --hidden 256,128 (default: 256)")
    train.add_argument("--activation", default=DEFAULTS["activation"], choices=sorted(ACTIVATION_MODULES))
    train.add_argument("--epochs", type=int, default=None,
                       help="total epochs (default: 20; 3 for --model transformer)")
    train.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    train.add_argument("--lr", type=float, default=None, help="learning rate (default: 1e-3 adam, 0.05 sgd)")
    train.add_argument("--optimizer", choices=("adam", "sgd"), default=DEFAULTS["optimizer"])
    train.add_argument("--momentum", type=float, default=DEFAULTS["momentum"], help="SGD momentum (default: 0.9)")
    train.add_argument("--weight-decay", type=float, default=DEFAULTS["weight_decay"],
                       help="λ of the textbook penalty λ/2 Σ‖W‖², as optimizer weight decay")
    train.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    train.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                       help="run each hidden layer and its activation as one op where the activation allows "
                            "(linear_relu...; --no-fused: linear then the activation) (default: fused)")
    train.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="initialization and shuffling seed")
    from ..models import BUILDERS

    train.add_argument("--model", default="mlp", choices=["mlp", *sorted(BUILDERS)],
                       help="model family (default: mlp); the others are gradflow.models builders")
    train.add_argument("--task", default=None,
                       help="the family's synthetic task (--model transformer: majority (default) or first_last)")
    train.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) after every epoch")
    train.add_argument("--resume", metavar="PATH", help="continue training from a checkpoint")
    train.add_argument("--no-progress", action="store_true", help="hide the per-epoch progress bar")
    from ..distributed.cli import add_arguments as add_distributed_arguments

    add_distributed_arguments(train)  # --distributed
    train.set_defaults(func=run_train)

    evaluate = subparsers.add_parser("eval", help="report a checkpoint's accuracy on its dataset")
    evaluate.add_argument("--checkpoint", required=True, metavar="PATH")
    evaluate.add_argument("--dataset", default=None, help="dataset to evaluate on (default: the one it was trained on)")
    evaluate.add_argument("--device", default="auto")
    evaluate.set_defaults(func=run_eval)


# ----- checking input -------------------------------------------------------------------------------
def _hidden_sizes(values):
    sizes = []
    for value in values or [str(s) for s in DEFAULTS["hidden"]]:
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            if not part.isdigit() or int(part) <= 0:
                raise CommandError(f"--hidden sizes must be positive integers, got {part!r}")
            sizes.append(int(part))
    return sizes


def _check_settings(args):
    for name in ("epochs", "batch_size"):
        if getattr(args, name) <= 0:
            raise CommandError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.lr is not None and not args.lr > 0:
        raise CommandError(f"--lr must be positive, got {args.lr}")
    if args.weight_decay < 0:
        raise CommandError(f"--weight-decay must be >= 0, got {args.weight_decay}")


def _load_data(spec):
    from ..data import DatasetError, load_dataset

    try:
        return load_dataset(spec)
    except DatasetError as exc:
        raise CommandError(str(exc)) from None


def _load_checkpoint(path):
    from ..checkpoint_io import CheckpointError, load_checkpoint

    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError as exc:
        raise CommandError(str(exc)) from None
    config = checkpoint.config
    if not {"sizes", "activation", "mean", "std"} <= set(config) | set(checkpoint.extra):
        raise CommandError(f"checkpoint {path!r} was not written by 'gradflow train' (no model settings)")
    return checkpoint


def _fit_checkpoint(checkpoint, dataset, path):
    """A dataset must match the checkpoint's input width and class count before anything runs."""
    sizes = checkpoint.config["sizes"]
    if dataset.n_features != sizes[0]:
        raise CommandError(f"checkpoint {path!r} expects {sizes[0]} features but dataset {dataset.name!r} "
                           f"has {dataset.n_features}")
    top = int(max(dataset.y_train.max(), dataset.y_test.max()))
    if top >= sizes[-1]:
        raise CommandError(f"dataset {dataset.name!r} has label {top}, out of range for the checkpoint's "
                           f"{sizes[-1]} classes")


# ----- the memory column ------------------------------------------------------------------------------
def retained_activation_memory(step):
    """Run ``step()`` (one forward) and return ``(its result, activation bytes it retains or None)``.

    The hook for the memory tracker: when ``gradflow.memory.track`` exists, the step runs inside
    it and the column shows the tracker's ``retained_bytes`` — the activations the graph keeps
    for backward, read before backward frees them. Without the tracker the table shows "-".
    """
    try:
        from ..memory import track
    except ImportError:
        return step(), None
    with track() as tracker:
        result = step()
        retained = getattr(tracker, "retained_bytes", None)
    return result, retained


def _format_bytes(n):
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


# ----- training ------------------------------------------------------------------------------------------
COLUMNS = ("epoch", "train loss", "train acc", "test acc", "time", "samples/s", "retained act. mem")
WIDTHS = (5, 10, 9, 8, 7, 9, 17)


def _row(values):
    return "  ".join(str(v).rjust(w) for v, w in zip(values, WIDTHS))


def _accuracy(model, x, y, device, batch_size=1024):
    from .. import no_grad
    from ..data import BatchIterator

    correct = 0
    was_training = model.training
    model.eval()
    with no_grad():
        for xb, yb in BatchIterator(x, y, batch_size=batch_size, device=device):
            correct += int((model(xb).argmax(axis=1) == yb).sum().item())
    model.train(was_training)
    return correct / len(x)


def _make_optimizer(args, model):
    from .. import optim

    lr = args.lr if args.lr is not None else DEFAULT_LR[args.optimizer]
    if args.optimizer == "sgd":
        return optim.SGD(model.parameters(), lr=lr, momentum=args.momentum, weight_decay=args.weight_decay)
    return optim.Adam(model.parameters(), lr=lr, weight_decay=args.weight_decay)


def run_train(args):
    import gradflow as gf
    from ..backends import resolve as resolve_device
    from ..backends.device import describe_choice
    from ..checkpoint_io import CheckpointError, restore, save_checkpoint
    from ..data import BatchIterator, Standardizer
    from ..nn import MLP
    from ..nn.functional import cross_entropy

    if args.model != "mlp":  # the model families of gradflow.models: gradflow/cli/train_family.py
        from .train_family import run_family

        return run_family(args)
    args.epochs = DEFAULTS["epochs"] if args.epochs is None else args.epochs
    _check_settings(args)
    hidden = _hidden_sizes(args.hidden)
    checkpoint = _load_checkpoint(args.resume) if args.resume else None
    dataset = _load_data(args.dataset)
    device = resolve_device(args.device)
    if checkpoint is not None:
        _fit_checkpoint(checkpoint, dataset, args.resume)
        sizes, activation = checkpoint.config["sizes"], checkpoint.config["activation"]
        scale = Standardizer(checkpoint.extra["mean"], checkpoint.extra["std"])
    else:
        sizes, activation = [dataset.n_features, *hidden, dataset.n_classes], args.activation
        scale = Standardizer.fit(dataset.x_train, per_feature=dataset.kind != "image")
    x_train, x_test = scale(dataset.x_train), scale(dataset.x_test)

    gf.manual_seed(args.seed)
    model = MLP(sizes, activation=activation, fused=args.fused).to(device)
    optimizer = _make_optimizer(args, model)
    start_epoch = 0
    if checkpoint is not None:
        try:
            restore(checkpoint, model, optimizer)
        except CheckpointError as exc:
            raise CommandError(f"cannot resume from {args.resume!r}: {exc}") from None
        start_epoch = checkpoint.epoch
        if start_epoch >= args.epochs:
            raise CommandError(f"checkpoint {args.resume!r} is already at epoch {start_epoch}; "
                               f"pass --epochs greater than {start_epoch} to train further")
    # The shuffling order depends on the seed and the epoch only, so a resumed run sees the
    # batches an uninterrupted one would have.
    batches = BatchIterator(x_train, dataset.y_train, batch_size=args.batch_size, shuffle=True,
                            seed=args.seed, device=device)
    batches.skip_epochs(start_epoch)
    if args.distributed:  # data-parallel under mpirun: see gradflow/distributed/cli.py
        from ..distributed.cli import distribute

        optimizer, batches = distribute(args, model, optimizer, batches)

    print(f"gradflow train: {dataset!r} on {describe_choice(args.device, device)}; "
          f"model {type(model).__name__}{sizes} {activation}{'' if args.fused else ' (unfused)'}, "
          f"{sum(p.numel() for p in model.parameters())} parameters; {type(optimizer).__name__} "
          f"lr={optimizer.param_groups[0]['lr']} weight_decay={args.weight_decay}", flush=True)
    print(_row(COLUMNS), flush=True)
    test_acc = None
    for epoch in range(start_epoch + 1, args.epochs + 1):
        test_acc = _train_epoch(model, optimizer, batches, cross_entropy, epoch, args, device, x_test,
                                dataset.y_test)
        if args.save:
            save_checkpoint(args.save, model, optimizer, epoch=epoch,
                            config={"sizes": sizes, "activation": activation, "dataset": args.dataset},
                            extra={"mean": scale.mean, "std": scale.std})
    print(f"final test accuracy: {test_acc:.4f} ({round(test_acc * len(x_test))}/{len(x_test)})")
    return 0


def _train_epoch(model, optimizer, batches, loss_fn, epoch, args, device, x_test, y_test):
    from tqdm import tqdm

    model.train()
    started = time.perf_counter()
    total_loss = correct = seen = 0
    memory = None
    bar = tqdm(batches, desc=f"epoch {epoch}", leave=False, file=sys.stderr, unit="batch",
               disable=args.no_progress or not sys.stderr.isatty())
    for index, (xb, yb) in enumerate(bar):
        def step():
            logits = model(xb)
            return logits, loss_fn(logits, yb)

        if index == 0:
            (logits, loss), memory = retained_activation_memory(step)
        else:
            logits, loss = step()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        n = len(yb)
        total_loss += loss.item() * n
        correct += int((logits.detach().argmax(axis=1) == yb).sum().item())
        seen += n
    elapsed = time.perf_counter() - started
    test_acc = _accuracy(model, x_test, y_test, device)
    print(_row((epoch, f"{total_loss / seen:.4f}", f"{correct / seen:.4f}", f"{test_acc:.4f}",
                f"{elapsed:.2f}s", f"{seen / elapsed:.0f}", _format_bytes(memory))), flush=True)
    return test_acc


# ----- eval ----------------------------------------------------------------------------------------------
def run_eval(args):
    import gradflow as gf
    from ..backends import resolve as resolve_device
    from ..checkpoint_io import CheckpointError, restore
    from ..data import Standardizer
    from ..nn import MLP
    from .train_family import family_checkpoint, run_family_eval

    if (family := family_checkpoint(args.checkpoint)) is not None:  # --model transformer ... --save
        return run_family_eval(args, family)
    checkpoint = _load_checkpoint(args.checkpoint)
    dataset = _load_data(args.dataset or checkpoint.config.get("dataset", "digits"))
    _fit_checkpoint(checkpoint, dataset, args.checkpoint)
    device = resolve_device(args.device)
    model = MLP(checkpoint.config["sizes"], activation=checkpoint.config["activation"]).to(device)
    try:
        restore(checkpoint, model)
    except CheckpointError as exc:
        raise CommandError(str(exc)) from None
    scale = Standardizer(checkpoint.extra["mean"], checkpoint.extra["std"])
    train_acc = _accuracy(model, scale(dataset.x_train), dataset.y_train, device)
    test_acc = _accuracy(model, scale(dataset.x_test), dataset.y_test, device)
    print(f"gradflow eval: {args.checkpoint} (epoch {checkpoint.epoch}) on {dataset!r}")
    print(f"train accuracy: {train_acc:.4f}")
    print(f"test accuracy: {test_acc:.4f} ({round(test_acc * len(dataset.y_test))}/{len(dataset.y_test)})")
    del gf
    return 0
