"""``gradflow memory``: how a model's training memory grows with batch size, and what batch fits.

Runs one measured training step (and one ``no_grad`` forward) per batch size through
``gradflow.memory.profile``, prints the measurements as a table, the fitted lines
``bytes = fixed + per_example × batch`` and, given ``--budget``, the largest batch whose
predicted training peak fits it. ``--json`` writes the numbers, ``--plot`` draws them.
The model is an MLP spec (``mlp:784-256-256-10``), a model family of ``gradflow.models`` with its
options (``cnn`` or ``cnn:1x8x8``, the image shape), or a checkpoint written by ``gradflow train --save``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from . import CommandError, check_seed

DEFAULT_BATCH_SIZES = (32, 64, 128, 256, 512)
SPEC_PREFIX = "mlp:"


def register(subparsers):
    parser = subparsers.add_parser("memory", help="profile training memory against batch size; the batch a budget allows",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mlp:784-256-256-10", metavar="SPEC|PATH",
                        help="'mlp:IN-HIDDEN...-OUT' (layer sizes), 'cnn[:CxHxW]' (image shape, default 1x8x8), "
                             "'transformer[:KEY=N,...]', or a checkpoint from 'gradflow train --save' "
                             "(mlp, cnn or transformer) "
                             "(default: mlp:784-256-256-10)")
    parser.add_argument("--activation", default=None,
                        help="hidden activation of an mlp: spec: relu, gelu, sigmoid, tanh, leaky_relu, softplus "
                             "(default: relu; a checkpoint brings its own)")
    parser.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                        help="hidden layers as fused linear + activation ops where the activation allows "
                             "(--no-fused: linear then the activation, the textbook graph) (default: fused)")
    parser.add_argument("--batch-sizes", default=",".join(map(str, DEFAULT_BATCH_SIZES)), metavar="N,N,...",
                        help="batch sizes to measure, at least two (default: 32,64,128,256,512)")
    parser.add_argument("--budget", metavar="BYTES", help="memory budget, e.g. 8GiB, 512MiB, 2GB: report the largest batch that fits")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: auto)")
    parser.add_argument("--optimizer", choices=("none", "sgd", "adam"), default=None,
                        help="optimizer whose state and step are counted; sgd has momentum 0.9 as in "
                             "'gradflow train' (default: the checkpoint's, else adam)")
    parser.add_argument("--json", metavar="PATH", help="write the measurements, fits and prediction as JSON")
    parser.add_argument("--plot", metavar="PATH", help="draw peaks and retained activations against batch size "
                                                         "(PNG/SVG/PDF; needs matplotlib: pip install 'gradflow[plot]')")
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights and the random batches (default: 0)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar over the sweep")
    # transformer:... specs also sweep sequence length: gradflow/cli/memory_sequence.py
    parser.add_argument("--seq-len", metavar="L,L,...", help="sequence lengths for a transformer:KEY=N,... model "
                                                             "(d, heads, ff, layers, vocab, classes), at least three "
                                                             "(default: 32,64,128,256)")
    parser.add_argument("--attention", choices=("math", "efficient"), default="math",
                        help="attention kernel of a transformer model (default: math, which keeps the probabilities)")
    parser.set_defaults(func=run_memory)


# ----- checking input -------------------------------------------------------------------------------
def parse_batch_sizes(text):
    """``"32,64,128"`` -> [32, 64, 128]: positive integers, at least two distinct ones, sorted."""
    sizes = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            size = int(part)
        except ValueError:
            raise CommandError(f"--batch-sizes must be positive integers separated by commas, got {part!r}") from None
        if size <= 0:
            raise CommandError(f"--batch-sizes must be positive, got {size}")
        sizes.append(size)
    if len(set(sizes)) < 2:
        raise CommandError(f"--batch-sizes needs at least two distinct sizes to fit a line, got {text!r}")
    return sorted(set(sizes))


def parse_budget(text):
    from ..memory import parse_bytes

    if text is None:
        return None
    try:
        budget = parse_bytes(text)
    except ValueError as exc:
        raise CommandError(f"--budget: {exc}") from None
    if budget <= 0:
        raise CommandError(f"--budget must be positive, got {text!r}")
    return budget


def parse_mlp_spec(spec):
    """``"mlp:784-256-10"`` -> [784, 256, 10]."""
    body = spec[len(SPEC_PREFIX):]
    parts = body.split("-")
    if len(parts) < 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise CommandError(f"--model {spec!r}: write an MLP as mlp:IN-HIDDEN...-OUT with positive layer sizes, "
                           "e.g. mlp:784-256-256-10")
    return [int(p) for p in parts]


def _check_activation(name):
    from ..nn.activations import ACTIVATION_MODULES

    if name not in ACTIVATION_MODULES:
        raise CommandError(f"unknown activation {name!r}; choose one of {', '.join(sorted(ACTIVATION_MODULES))}")
    return name


def build_model(args, device):
    """(model, description, the checkpoint's optimizer class or None) for ``--model``."""
    from ..checkpoint_io import CheckpointError, restore
    from ..nn import MLP

    spec = args.model
    family, _, options = spec.partition(":")
    if family.lower() == "cnn":
        return _cnn_model(options, None, device), f"cnn {options or '1x8x8'}", None
    if spec.lower().startswith(SPEC_PREFIX):
        sizes, activation, source, optimizer_class = parse_mlp_spec(spec), args.activation or "relu", None, None
    else:
        if not os.path.exists(spec) and not spec.endswith(".npz"):
            raise CommandError(f"--model {spec!r} is neither an MLP spec (mlp:784-256-10) nor an existing checkpoint file")
        from .train import _load_checkpoint

        checkpoint = _load_checkpoint(spec)
        if checkpoint.config.get("model", "mlp") == "cnn":
            model = _cnn_model("x".join(map(str, checkpoint.config.get("image_shape", (1, 8, 8)))), checkpoint, device)
            return model, f"cnn from {spec}", checkpoint.optimizer_class
        sizes, activation = checkpoint.config["sizes"], checkpoint.config["activation"]
        if args.activation is not None and args.activation != activation:
            raise CommandError(f"--activation applies to mlp: specs; checkpoint {spec!r} was trained with {activation!r}")
        source, optimizer_class = spec, checkpoint.optimizer_class
    _check_activation(activation)
    model = MLP(sizes, activation=activation, fused=args.fused).to(device)
    if source is not None:
        try:
            restore(checkpoint, model)
        except CheckpointError as exc:
            raise CommandError(f"cannot load {source!r}: {exc}") from None
    description = (f"MLP {'-'.join(map(str, sizes))} {activation}" + ("" if args.fused else " unfused")
                   + (f" from {source}" if source else ""))
    return model, description, optimizer_class


def _cnn_model(options, checkpoint, device):
    """The CNN of ``gradflow.models`` for an image shape written CxHxW or HxW (from a checkpoint if given)."""
    from ..checkpoint_io import CheckpointError, restore
    from ..models import build

    parts = options.lower().split("x") if options else ["1", "8", "8"]
    if not 2 <= len(parts) <= 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise CommandError(f"--model cnn:{options}: write the image shape as CxHxW or HxW, e.g. cnn:1x8x8")
    n_classes = checkpoint.config["sizes"][-1] if checkpoint is not None else 10
    try:
        model = build("cnn", image_shape=tuple(int(p) for p in parts), n_classes=n_classes).to(device)
    except ValueError as exc:
        raise CommandError(f"--model cnn:{options}: {exc}") from None
    if checkpoint is not None:
        try:
            restore(checkpoint, model)
        except CheckpointError as exc:
            raise CommandError(f"cannot load the checkpoint: {exc}") from None
    return model


def make_optimizer(name, model):
    from .. import optim

    if name == "sgd":
        return optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    if name == "adam":
        return optim.Adam(model.parameters())
    return None


# ----- the command ----------------------------------------------------------------------------------------
def sweep_settings(args):
    """``--batch-sizes`` and ``--budget`` parsed, and matplotlib present if ``--plot`` asks for it:
    every flag problem is found before the sweep, not after it."""
    batch_sizes = parse_batch_sizes(args.batch_sizes)
    budget = parse_budget(args.budget)
    if args.plot:
        from ..memory.plot import require_matplotlib

        try:
            require_matplotlib()
        except ImportError as exc:
            raise CommandError(f"--plot: {exc}") from None
    return batch_sizes, budget


def run_memory(args):
    import gradflow as gf
    from ..backends import resolve as resolve_device
    from ..backends.device import describe_choice
    from ..memory import format_bytes, profile
    from .memory_sequence import is_sequence_spec, run_sequence_memory, transformer_checkpoint

    check_seed(args.seed)
    from .train import check_save_path

    check_save_path(args.json, "--json")  # before the sweep, not after it
    check_save_path(args.plot, "--plot")
    if is_sequence_spec(args.model) or transformer_checkpoint(args.model) is not None:
        return run_sequence_memory(args)
    if args.seq_len is not None:
        raise CommandError("--seq-len applies to transformer: models only")
    batch_sizes, budget = sweep_settings(args)
    device = resolve_device(args.device)
    gf.manual_seed(args.seed)
    model, description, saved_optimizer = build_model(args, device)
    optimizer_name = args.optimizer or {"SGD": "sgd", "Adam": "adam"}.get(saved_optimizer, "adam")
    optimizer = make_optimizer(optimizer_name, model)
    sizes = getattr(model, "sizes", None) or [model.n_features, model.n_classes]  # an MLP, or a model family
    n_in, n_classes = sizes[0], sizes[-1]

    def make_batch(n):
        return gf.randn(n, n_in, device=device), gf.randint(0, n_classes, (n,), device=device)

    n_params = sum(p.numel() for p in model.parameters())
    print(f"gradflow memory: {description} on {describe_choice(args.device, device)}, {n_params:,} parameters; "
          f"optimizer {optimizer_name}; one training step (cross-entropy) per batch size", flush=True)
    result = profile(model, make_batch, batch_sizes, optimizer=optimizer,
                     progress=not args.no_progress and sys.stderr.isatty())
    print(result.table())
    print()
    print("fit: bytes = fixed + per_example × batch")
    for field, label in FIT_LABELS.items():
        if field == "training_peak" and result.lap_fits:
            pieces = upper_envelope(result.lap_fits)
            for i, (start, fit) in enumerate(pieces):
                end = pieces[i + 1][0] - 1 if i + 1 < len(pieces) else None
                where = f"batch {start:,}-{end:,}" if end is not None else f"batch >= {start:,}"
                print(f"  {label if i == 0 else '':<20} {_line(fit)}   for {where}")
            if len(pieces) > 1:
                print(f"  {'':<20} (the largest of {len(result.lap_fits)} lines, one per moment of the step: "
                      "optimizer work, then activation gradients)")
            continue
        fit = result.fits[field]
        print(f"  {label:<20} {_line(fit)}   (largest residual {100 * fit.max_relative_error:.2f}%)")

    summary = {"model": description, "sizes": sizes, "activation": getattr(model, "activation", "relu"),
               "device": str(device),
               "optimizer": optimizer_name, "parameters": n_params, "seed": args.seed, **result.to_dict()}
    if budget is not None:
        prediction = predict_max_batch(result, budget)
        summary["budget_bytes"] = budget
        summary.update(prediction)
        print()
        print(f"budget {format_bytes(budget)}: largest batch for training {prediction['max_batch']:,} "
              f"(predicted peak {format_bytes(prediction['predicted_training_peak'])}); "
              f"for inference {prediction['max_batch_inference']:,}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
        print(f"wrote {args.json}")
    if args.plot:
        from ..memory.plot import plot_profile

        plot_profile(result, args.plot, budget=budget, title=f"gradflow memory: {description} on {device}, "
                                                              f"optimizer {optimizer_name}")
        print(f"wrote {args.plot}")
    return 0


FIT_LABELS = {"training_peak": "training peak", "inference_peak": "inference peak", "retained": "retained activations"}


def _line(fit):
    from ..memory import format_bytes

    return f"{format_bytes(fit.fixed):>10} + {format_bytes(fit.per_example):>10} × batch"


def upper_envelope(fits):
    """[(first batch, fit), ...]: which line is the largest from batch 1 on, and where that changes."""
    current = max(fits, key=lambda f: (f.predict(1), f.per_example))
    pieces, start = [(1, current)], 1.0
    while True:
        crossings = [((current.fixed - f.fixed) / (f.per_example - current.per_example), f)
                     for f in fits if f.per_example > current.per_example]
        crossings = [(n, f) for n, f in crossings if n >= start]
        if not crossings:
            return pieces
        start = min(n for n, _ in crossings)
        current = max((f for n, f in crossings if n == start), key=lambda f: f.per_example)
        first = int(np.floor(start)) + 1
        if first == pieces[-1][0]:
            pieces[-1] = (first, current)   # a crossing inside one integer step replaces that piece
        else:
            pieces.append((first, current))


def predict_max_batch(result, budget):
    """The largest training and inference batch under ``budget``; CommandError when none fits."""
    from ..memory import format_bytes

    # The training peak's fixed part is the largest fixed part of its laps (see profile.py).
    fixed = max(fit.fixed for fit in result.lap_fits) if result.lap_fits else result.fits["training_peak"].fixed
    if budget < result.predict(1):
        raise CommandError(f"--budget {format_bytes(budget)} is below the predicted training peak at batch 1 "
                           f"({format_bytes(result.predict(1))}; the fixed cost of parameters, gradients and "
                           f"optimizer state alone is {format_bytes(fixed)})")
    try:
        best, best_inference = result.max_batch(budget), result.max_batch(budget, inference=True)
    except ValueError as exc:  # the measured peak does not grow with the batch
        raise CommandError(f"cannot predict a batch for --budget: {exc}") from None
    return {"max_batch": best, "max_batch_inference": best_inference, "fixed_bytes": fixed,
            "predicted_training_peak": result.predict(best),
            "predicted_inference_peak": result.predict(best_inference, "inference_peak")}
