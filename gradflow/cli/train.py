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
import math
import sys
import time

from . import CommandError, check_seed

DEFAULTS = dict(dataset="digits", hidden=[256], activation="relu", epochs=20, batch_size=64,
                optimizer="adam", weight_decay=0.0, momentum=0.9, seed=0)
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.05}
# A model family whose normalization layers take a larger step than the MLP's default.
MODEL_DEFAULT_LR = {("cnn", "adam"): 3e-3}


def register(subparsers):
    from ..nn.activations import ACTIVATION_MODULES

    train = subparsers.add_parser("train", help="train an MLP on a dataset (the bundled digits by default)",
                                  description=__doc__.split("\n\n")[0])
    train.add_argument("--dataset", default=DEFAULTS["dataset"],
                       help="'digits' (bundled), 'mnist:DIR', 'fashion-mnist:DIR', a folder of IDX files, "
                            "or a .npz/.csv file (default: digits)")
    from ..models import BUILDERS

    train.add_argument("--model", default=None, choices=["mlp", *sorted(BUILDERS)],
                       help="model family: the textbook MLP or one from gradflow.models (default: mlp; on "
                            "--resume, the checkpoint's)")
    train.add_argument("--hidden", action="append", metavar="SIZES",
                       help="hidden layer sizes; repeat or give a comma list, e.g. --hidden 256,128 (default: 256)")
    train.add_argument("--activation", default=None, choices=sorted(ACTIVATION_MODULES),
                       help="hidden-layer activation (default: relu; on --resume, the checkpoint's)")
    train.add_argument("--epochs", type=int, default=None,
                       help="total epochs (default: 20; 3 for --model transformer, 2 for its reverse and copy, 6 for sort)")
    train.add_argument("--batch-size", type=int, default=None,
                       help="default: 64; a --model family's task may choose its own")
    train.add_argument("--lr", type=float, default=None, help="learning rate (default: 1e-3 adam, 0.05 sgd; 3e-3 adam for --model cnn)")
    # Optimizer flags default to None so --resume can tell a given flag (applied to the resumed
    # optimizer) from an omitted one (the checkpoint's value is kept); see _optimizer_settings.
    train.add_argument("--optimizer", choices=("adam", "sgd"), default=None,
                       help="default: adam; on --resume, the checkpoint's")
    train.add_argument("--momentum", type=float, default=None, help="SGD momentum (default: 0.9)")
    train.add_argument("--weight-decay", type=float, default=None,
                       help="λ of the textbook penalty λ/2 Σ‖W‖², as optimizer weight decay (default: 0)")
    train.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    train.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                       help="run each hidden layer and its activation as one op where the activation allows "
                            "(linear_relu...; --no-fused: linear then the activation) (default: fused)")
    train.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="initialization and shuffling seed")
    train.add_argument("--save", metavar="PATH", help="write a checkpoint after every epoch: .npz, or .safetensors "
                                                     "by suffix (pip install 'gradflow[interop]')")
    train.add_argument("--task", default=None,
                       help="the family's synthetic task (--model transformer: majority (default) or first_last, "
                            "or per-position reverse, sort, copy scored by whole-sequence accuracy)")
    train.add_argument("--resume", metavar="PATH",
                       help="continue training from a checkpoint: --lr, --weight-decay, --momentum given "
                            "here replace the checkpoint's; --hidden/--activation/--optimizer must match it")
    train.add_argument("--no-progress", action="store_true", help="hide the per-epoch progress bar")
    from ..distributed.cli import add_arguments as add_distributed_arguments

    add_distributed_arguments(train)  # --distributed
    train.set_defaults(func=run_train)

    evaluate = subparsers.add_parser("eval", help="report a checkpoint's accuracy on its dataset")
    evaluate.add_argument("--checkpoint", required=True, metavar="PATH",
                          help="a checkpoint from 'gradflow train --save' (.npz or .safetensors)")
    evaluate.add_argument("--dataset", default=None, help="dataset to evaluate on (default: the one it was trained on)")
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--allow-nonfinite", action="store_true",
                          help="evaluate a checkpoint whose weights hold NaN or infinity (with a warning) "
                               "instead of refusing it")
    evaluate.set_defaults(func=run_eval)


# ----- checking input -------------------------------------------------------------------------------
def _hidden_sizes(values):
    sizes = []
    for value in values or [str(s) for s in DEFAULTS["hidden"]]:
        for part in str(value).split(","):
            part = part.strip()
            if not part:  # `--hidden ""` or `256,,128`: a typo, not a request for no hidden layer
                raise CommandError(f"--hidden {str(value)!r} has an empty size; give positive integers such as "
                                   "--hidden 256 or --hidden 256,128")
            if not part.isdigit() or int(part) <= 0:
                raise CommandError(f"--hidden sizes must be positive integers, got {part!r}")
            sizes.append(int(part))
    return sizes


def _check_settings(args):
    for name in ("epochs", "batch_size"):
        if getattr(args, name) <= 0:
            raise CommandError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    check_seed(args.seed)
    _check_hyperparameters(args)


def _check_hyperparameters(args):
    """Finite numbers in range: NaN passes every ``<`` test, so finiteness is checked first."""
    checks = (("lr", args.lr, "positive", lambda v: v > 0),
              ("weight_decay", args.weight_decay, ">= 0", lambda v: v >= 0),
              ("momentum", args.momentum, ">= 0", lambda v: v >= 0))
    for name, value, wanted, ok in checks:
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if not math.isfinite(value):
            raise CommandError(f"{flag} must be a finite number, got {value}")
        if not ok(value):
            raise CommandError(f"{flag} must be {wanted}, got {value}")


def _optimizer_settings(args, checkpoint):
    """The optimizer name and the hyperparameters given on the command line (None: not given).

    Without a checkpoint an omitted flag takes its default. On --resume an omitted flag keeps
    the checkpoint's value (restore loads it); a given one replaces it after the restore.
    """
    saved = (checkpoint.optimizer_class or "").lower() if checkpoint is not None else None
    if checkpoint is not None and args.optimizer is not None and args.optimizer != saved:
        raise CommandError(f"--optimizer {args.optimizer} conflicts with checkpoint {args.resume!r}, which was "
                           f"trained with {checkpoint.optimizer_class}; omit --optimizer to resume with it")
    name = args.optimizer or saved or DEFAULTS["optimizer"]
    if args.momentum is not None and name != "sgd":
        raise CommandError(f"--momentum applies to --optimizer sgd, not {name}")
    given = {"lr": args.lr, "weight_decay": args.weight_decay, "momentum": args.momentum}
    return name, {k: v for k, v in given.items() if v is not None}


def _check_architecture(args, checkpoint, hidden):
    """--hidden and --activation cannot change a trained model: refuse a conflict with the checkpoint."""
    sizes, activation = checkpoint.config["sizes"], checkpoint.config["activation"]
    if args.hidden is not None and hidden != list(sizes[1:-1]):
        raise CommandError(f"--hidden {','.join(map(str, hidden))} conflicts with checkpoint {args.resume!r}, "
                           f"whose hidden layers are {','.join(map(str, sizes[1:-1])) or 'none'}; omit --hidden "
                           "to resume it")
    if args.activation is not None and args.activation != activation:
        raise CommandError(f"--activation {args.activation} conflicts with checkpoint {args.resume!r}, trained "
                           f"with {activation}; omit --activation to resume it")


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
    if _trains_on_own_task(config.get("model", "mlp")):  # its own settings: see train_family.py
        return checkpoint
    if not {"sizes", "activation", "mean", "std"} <= set(config) | set(checkpoint.extra):
        raise CommandError(f"checkpoint {path!r} was not written by 'gradflow train' (no model settings)")
    n_features = config["sizes"][0]
    for name in ("mean", "std"):  # the feature scaling: one value per input feature of the model
        shape = tuple(checkpoint.extra[name].shape)
        if shape != (n_features,):
            raise CommandError(f"checkpoint {str(path)!r}: extra/{name} has shape {shape} but the model takes "
                               f"{n_features} features, so it must be ({n_features},)")
    return checkpoint


def check_save_path(path, flag="--save"):
    """``--save PATH`` must be writable before epoch 1 trains (the MLP and the family paths both ask;
    ``gradflow memory`` asks for ``--json``/``--plot`` before its sweep)."""
    from ..checkpoint_io import CheckpointError, check_writable

    if path is None:
        return
    try:
        check_writable(path)
    except CheckpointError as exc:
        raise CommandError(f"{flag}: {exc}") from None


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


def _correct(logits, y):
    """How many examples are right: the argmax class for (N, C) logits; for per-position logits
    (N, C, L) against targets (N, L), only sequences with *every* position right count."""
    right = logits.argmax(axis=1) == y
    if right.ndim > 1:
        right = right.all(axis=tuple(range(1, right.ndim)))
    return int(right.sum().item())


def _accuracy(model, x, y, device, batch_size=1024):
    from .. import no_grad
    from ..data import BatchIterator

    correct = 0
    was_training = model.training
    model.eval()
    with no_grad():
        for xb, yb in BatchIterator(x, y, batch_size=batch_size, device=device):
            correct += _correct(model(xb), yb)
    model.train(was_training)
    return correct / len(x)


def _make_optimizer(name, given, model, model_name="mlp"):
    from .. import optim

    lr = given.get("lr", MODEL_DEFAULT_LR.get((model_name, name), DEFAULT_LR[name]))
    weight_decay = given.get("weight_decay", DEFAULTS["weight_decay"])
    if name == "sgd":
        return optim.SGD(model.parameters(), lr=lr, momentum=given.get("momentum", DEFAULTS["momentum"]),
                         weight_decay=weight_decay)
    return optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)


def _describe_optimizer(optimizer):
    """The settings the run really uses, read back from the optimizer (after any resume)."""
    group = optimizer.param_groups[0]
    settings = [f"lr={group['lr']}", f"weight_decay={group['weight_decay']}"]
    if "momentum" in group:
        settings.append(f"momentum={group['momentum']}")
    return " ".join(settings)


def run_train(args):
    import gradflow as gf
    from ..backends import resolve as resolve_device
    from ..backends.device import describe_choice
    from ..checkpoint_io import save_checkpoint
    from ..data import BatchIterator, Standardizer
    from ..nn.functional import cross_entropy

    checkpoint = _load_checkpoint(args.resume) if args.resume else None
    if checkpoint is not None:
        trained = checkpoint.config.get("model", "mlp")
        if args.model is not None and args.model != trained:
            raise CommandError(f"--model {args.model} conflicts with checkpoint {args.resume!r}, a {trained} "
                               "model; omit --model to resume it")
        args.model = trained
    args.model = args.model or "mlp"
    if _trains_on_own_task(args.model):  # sequence families: gradflow/cli/train_family.py
        from .train_family import run_family

        return run_family(args)
    args.epochs = DEFAULTS["epochs"] if args.epochs is None else args.epochs
    args.batch_size = DEFAULTS["batch_size"] if args.batch_size is None else args.batch_size
    _check_settings(args)
    check_save_path(args.save)
    hidden = _hidden_sizes(args.hidden)
    if checkpoint is not None:
        _check_architecture(args, checkpoint, hidden)
    optimizer_name, given = _optimizer_settings(args, checkpoint)
    dataset = _load_data(args.dataset)
    device = resolve_device(args.device)
    if checkpoint is not None:
        _fit_checkpoint(checkpoint, dataset, args.resume)
        sizes, activation = checkpoint.config["sizes"], checkpoint.config["activation"]
        scale = Standardizer(checkpoint.extra["mean"], checkpoint.extra["std"])
    else:
        sizes, activation = [dataset.n_features, *hidden, dataset.n_classes], args.activation or DEFAULTS["activation"]
        scale = Standardizer.fit(dataset.x_train, per_feature=dataset.kind != "image")
    x_train, x_test = scale(dataset.x_train), scale(dataset.x_test)

    model_name = args.model
    gf.manual_seed(args.seed)
    model = _build_model(model_name, sizes, activation, args.fused, dataset).to(device)
    optimizer = _make_optimizer(optimizer_name, given, model, model_name)
    start_epoch = resume(args, checkpoint, model, optimizer, given) if checkpoint is not None else 0
    # The shuffling order depends on the seed and the epoch only, so a resumed run sees the
    # batches an uninterrupted one would have.
    batches = BatchIterator(x_train, dataset.y_train, batch_size=args.batch_size, shuffle=True,
                            seed=args.seed, device=device)
    batches.skip_epochs(start_epoch)
    if args.distributed:  # data-parallel under mpirun: see gradflow/distributed/cli.py
        from ..distributed.cli import distribute

        optimizer, batches = distribute(args, model, optimizer, batches)

    print(f"gradflow train: {dataset!r} on {describe_choice(args.device, device)}; "
          f"model {_describe(model_name, model, sizes, activation, args.fused)}, "
          f"{sum(p.numel() for p in model.parameters())} parameters; {type(optimizer).__name__} "
          f"{_describe_optimizer(optimizer)}", flush=True)
    print(_row(COLUMNS), flush=True)
    test_acc = None
    for epoch in range(start_epoch + 1, args.epochs + 1):
        test_acc = _train_epoch(model, optimizer, batches, cross_entropy, epoch, args, device, x_test,
                                dataset.y_test)
        if args.save:
            save_checkpoint(args.save, model, optimizer, epoch=epoch,
                            config={"sizes": sizes, "activation": activation, "dataset": args.dataset,
                                    "model": model_name, "image_shape": list(getattr(model, "image_shape", ()))},
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
        correct += _correct(logits.detach(), yb)
        seen += n
    elapsed = time.perf_counter() - started
    test_acc = _accuracy(model, x_test, y_test, device)
    print(_row((epoch, f"{total_loss / seen:.4f}", f"{correct / seen:.4f}", f"{test_acc:.4f}",
                f"{elapsed:.2f}s", f"{seen / elapsed:.0f}", _format_bytes(memory))), flush=True)
    return test_acc


def resume(args, checkpoint, model, optimizer, given):
    """Load ``checkpoint`` into the model and optimizer; the epoch to continue after."""
    from ..checkpoint_io import CheckpointError, restore

    try:
        restore(checkpoint, model, optimizer)
    except CheckpointError as exc:
        raise CommandError(f"cannot resume from {args.resume!r}: {exc}") from None
    for group in optimizer.param_groups:  # flags given with --resume win over the checkpoint's values
        group.update(given)
    if checkpoint.epoch >= args.epochs:
        raise CommandError(f"checkpoint {args.resume!r} is already at epoch {checkpoint.epoch}; "
                           f"pass --epochs greater than {checkpoint.epoch} to train further")
    return checkpoint.epoch


def _trains_on_own_task(name):
    """A gradflow.models family that brings its own data (``builder.load_data``), not --dataset's."""
    from ..models import BUILDERS

    return hasattr(BUILDERS.get(name), "load_data")


def _build_model(name, sizes, activation, fused, dataset):
    """The MLP of ``sizes``, or the gradflow.models family ``name`` fitted to the dataset's images."""
    from ..nn import MLP

    if name == "mlp":
        return MLP(sizes, activation=activation, fused=fused)
    from ..models import build

    image_shape = dataset.info.get("image_shape")
    if image_shape is None:
        raise CommandError(f"--model {name} needs an image dataset; {dataset.name!r} has flat features")
    return build(name, image_shape=image_shape, n_classes=sizes[-1])


def _describe(name, model, sizes, activation, fused):
    if name == "mlp":
        return f"{type(model).__name__}{sizes} {activation}{'' if fused else ' (unfused)'}"
    return f"{name} {' '.join(type(m).__name__ for m in model.children())}"


# ----- eval ----------------------------------------------------------------------------------------------
def _check_finite_weights(checkpoint, path, allow):
    """A model with NaN/inf weights scores garbage: refuse it, or warn when --allow-nonfinite says so."""
    import numpy as np

    arrays = {**{f"model/{k}": v for k, v in checkpoint.model_state.items()},
              **{f"extra/{k}": v for k, v in checkpoint.extra.items()}}
    bad = {name: int(np.size(a) - np.isfinite(a).sum()) for name, a in arrays.items()
           if np.asarray(a).dtype.kind == "f" and not np.isfinite(a).all()}
    if not bad:
        return
    where = ", ".join(f"{name} ({count})" for name, count in sorted(bad.items()))
    message = f"checkpoint {str(path)!r} holds NaN or infinite values in {where}"
    if not allow:
        raise CommandError(f"{message}; pass --allow-nonfinite to evaluate it anyway")
    print(f"gradflow eval: warning: {message}", file=sys.stderr)


def run_eval(args):
    import gradflow as gf
    from ..backends import resolve as resolve_device
    from ..checkpoint_io import CheckpointError, restore
    from ..data import Standardizer
    from .train_family import family_checkpoint, run_family_eval

    if (family := family_checkpoint(args.checkpoint)) is not None:  # --model transformer ... --save
        return run_family_eval(args, family)
    checkpoint = _load_checkpoint(args.checkpoint)
    _check_finite_weights(checkpoint, args.checkpoint, args.allow_nonfinite)
    dataset = _load_data(args.dataset or checkpoint.config.get("dataset", "digits"))
    _fit_checkpoint(checkpoint, dataset, args.checkpoint)
    device = resolve_device(args.device)
    model = _build_model(checkpoint.config.get("model", "mlp"), checkpoint.config["sizes"],
                         checkpoint.config["activation"], True, dataset).to(device)
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
