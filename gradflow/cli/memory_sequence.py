"""``gradflow memory --model transformer:...``: memory against batch size *and* sequence length.

For each ``--seq-len`` L the command runs ``gradflow.memory.profile`` over ``--batch-sizes`` and fits
``bytes = fixed(L) + per_example(L) × batch``; then fits each coefficient against L with its L and L²
terms (``QuadraticFit``; attention's probabilities are H·L² per example with the "math" kernel)
and, given ``--budget``, predicts the largest batch at each L and the longest sequence at the
smallest batch. The training peak is a maximum over the moments of a step (see profile.py); over
L it is bounded by the largest fixed part plus the largest per-example part of those moments. ``--attention efficient`` selects the memory-efficient kernel (O(L) per row).
``--model PATH`` takes a checkpoint of ``gradflow train --model transformer --save`` instead of a spec
(the trained model, swept up to its ``max_len``); ``--plot`` draws one line per sequence length.
"""
from __future__ import annotations

import json
import sys

from . import CommandError

SPEC_PREFIX = "transformer"
SPEC_DEFAULTS = {"d": 64, "heads": 4, "ff": 128, "layers": 2, "vocab": 1000, "classes": 10}
DEFAULT_SEQ_LENS = (32, 64, 128, 256)


def is_sequence_spec(spec):
    return spec.lower() == SPEC_PREFIX or spec.lower().startswith(SPEC_PREFIX + ":")


def transformer_checkpoint(spec):
    """The checkpoint at ``spec`` if ``gradflow train --model transformer --save`` wrote it, else None."""
    import os

    if not os.path.isfile(spec):
        return None
    from .train_family import family_checkpoint

    checkpoint = family_checkpoint(spec)
    return checkpoint if checkpoint is not None and checkpoint.config.get("model") == SPEC_PREFIX else None


def _checkpoint_model(spec, checkpoint, device):
    """The trained model of a transformer checkpoint, rebuilt from its task and restored."""
    from ..checkpoint_io import CheckpointError, restore
    from ..models import BUILDERS, build

    dataset = BUILDERS[SPEC_PREFIX].load_data(checkpoint.config.get("task"))
    model = build(SPEC_PREFIX, dataset=dataset).to(device)
    try:
        restore(checkpoint, model)
    except CheckpointError as exc:
        raise CommandError(f"cannot load {spec!r}: {exc}") from None
    return model


def _default_seq_lens(max_len):
    """Four lengths up to the model's ``max_len`` (its position table ends there)."""
    return sorted({max(1, max_len * k // 4) for k in range(1, 5)})


def parse_spec(spec):
    """``transformer:d=64,heads=4,ff=128,layers=2,vocab=1000,classes=10`` (any subset) -> dict."""
    options = dict(SPEC_DEFAULTS)
    body = spec.split(":", 1)[1] if ":" in spec else ""
    for part in filter(None, (p.strip() for p in body.split(","))):
        key, _, value = part.partition("=")
        if key not in SPEC_DEFAULTS or not value.isdigit() or int(value) <= 0:
            raise CommandError(f"--model {spec!r}: write transformer:KEY=N,... with positive N and keys "
                               f"{', '.join(SPEC_DEFAULTS)}, e.g. transformer:d=128,heads=4,layers=2")
        options[key] = int(value)
    if options["d"] % options["heads"]:
        raise CommandError(f"--model {spec!r}: d={options['d']} must be divisible by heads={options['heads']}")
    return options


def parse_seq_lens(text):
    from .memory import parse_batch_sizes

    try:
        lengths = parse_batch_sizes(text)
    except CommandError as exc:
        raise CommandError(str(exc).replace("--batch-sizes", "--seq-len")) from None
    if len(lengths) < 3:
        raise CommandError(f"--seq-len needs at least three distinct lengths to fit the L and L² terms, got {text!r}")
    return lengths


def run_sequence_memory(args):
    import gradflow as gf
    from ..backends import resolve as resolve_device
    from ..backends.device import describe_choice
    from ..memory import QuadraticFit, format_bytes, profile
    from ..models.transformer import TransformerClassifier, TransformerTagger
    from ..nn.functional import sdpa_kernel
    from .memory import make_optimizer, sweep_settings

    checkpoint = None if is_sequence_spec(args.model) else transformer_checkpoint(args.model)
    options = parse_spec(args.model) if checkpoint is None else None
    batch_sizes, budget = sweep_settings(args)
    device = resolve_device(args.device)
    gf.manual_seed(args.seed)
    if checkpoint is not None:
        model = _checkpoint_model(args.model, checkpoint, device)
        lengths = parse_seq_lens(args.seq_len or ",".join(map(str, _default_seq_lens(model.max_len))))
        if max(lengths) > model.max_len:
            raise CommandError(f"--seq-len {max(lengths)} is longer than the checkpoint's model takes "
                               f"(max_len {model.max_len}, its task's length)")
        options = {"vocab": model.embed.weight.shape[0], "classes": model.head.weight.shape[0]}
        description = f"{type(model).__name__} from {args.model} (task {checkpoint.config.get('task')})"
        saved = (checkpoint.optimizer_class or "").lower()
        optimizer_name = args.optimizer or (saved if saved in ("adam", "sgd") else "adam")
    else:
        lengths = parse_seq_lens(args.seq_len or ",".join(map(str, DEFAULT_SEQ_LENS)))
        model = TransformerClassifier(options["vocab"], options["classes"], max(lengths), d_model=options["d"],
                                      nhead=options["heads"], num_layers=options["layers"],
                                      dim_feedforward=options["ff"], dropout=0.0).to(device)
        description = (f"transformer d={options['d']} heads={options['heads']} ff={options['ff']} "
                       f"layers={options['layers']} vocab={options['vocab']} classes={options['classes']}")
        optimizer_name = args.optimizer or "adam"
    # A per-position model (TransformerTagger) takes one target per position.
    per_position = isinstance(model, TransformerTagger)
    optimizer = make_optimizer(optimizer_name, model)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"gradflow memory: {description} on {describe_choice(args.device, device)}, {n_params:,} parameters; "
          f"optimizer {optimizer_name}; attention {args.attention}; one training step (cross-entropy) per "
          f"batch size and sequence length", flush=True)
    rows = []
    with sdpa_kernel(args.attention):
        for length in lengths:
            def make_batch(n, length=length):
                return (gf.randint(0, options["vocab"], (n, length), device=device),
                        gf.randint(0, options["classes"], (n, length) if per_position else (n,), device=device))

            result = profile(model, make_batch, batch_sizes, optimizer=optimizer,
                             progress=not args.no_progress and sys.stderr.isatty())
            rows.append({"seq_len": length, "profile": result})
    header = f"{'L':>6}  {'retained/example':>16}  {'train fixed':>11}  {'train/example':>13}  {'infer/example':>13}"
    print(header)
    print("-" * len(header))
    for row in rows:
        fits = row["profile"].fits
        row.update(retained=fits["retained"].per_example, train_fixed=_training_fixed(row["profile"]),
                   train_per_example=_training_per_example(row["profile"]),
                   infer_per_example=fits["inference_peak"].per_example)
        print(f"{row['seq_len']:>6}  {_bytes(row['retained']):>16}  {_bytes(row['train_fixed']):>11}  "
              f"{_bytes(row['train_per_example']):>13}  {_bytes(row['infer_per_example']):>13}")
    quadratic = {key: QuadraticFit(lengths, [row[key] for row in rows])
                 for key in ("retained", "train_fixed", "train_per_example")}
    print()
    print("fit over L: bytes = fixed(L) + per_example(L) × batch, each a + b·L + c·L²")
    for key, label in (("retained", "retained/example"), ("train_per_example", "train peak/example"),
                       ("train_fixed", "train peak fixed")):
        fit = quadratic[key]
        print(f"  {label:<19} {_bytes(fit.fixed):>10} + {_bytes(fit.linear):>10}·L + "
              f"{_bytes(fit.quadratic):>10}·L²   (largest residual {100 * fit.max_relative_error:.2f}%)")
    summary = {"model": description, "attention": args.attention, "device": str(device), "parameters": n_params,
               "optimizer": optimizer_name, "batch_sizes": batch_sizes, "seq_lens": lengths,
               "rows": [{k: v for k, v in row.items() if k != "profile"} for row in rows],
               "fits_over_seq_len": {k: v.to_dict() for k, v in quadratic.items()}}
    if budget is not None:
        print()
        best = {row["seq_len"]: row["profile"].max_batch(budget) for row in rows}
        smallest = batch_sizes[0]
        longest = _longest_sequence(quadratic, smallest, budget, max(lengths) * 64)
        print(f"budget {format_bytes(budget)}: largest training batch "
              + ", ".join(f"{n:,} at L={length}" for length, n in best.items())
              + f"; longest sequence at batch {smallest}: {longest:,} (predicted)")
        summary.update(budget_bytes=budget, max_batch_by_seq_len=best, max_seq_len_at_batch=[smallest, longest])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=2)
        print(f"wrote {args.json}")
    if args.plot:
        from ..memory.plot import plot_sequence_profiles

        plot_sequence_profiles({row["seq_len"]: row["profile"] for row in rows}, args.plot, budget=budget,
                               title=f"gradflow memory: {description}\non {device}, optimizer {optimizer_name}, "
                                     f"attention {args.attention}")
        print(f"wrote {args.plot}")
    return 0


def _bytes(value):
    from ..memory import format_bytes

    # Fitted coefficients are floats a hair off an integer (15.99999 B is 16 B); negative ones are signed.
    rounded = round(value)
    return ("-" if rounded < 0 else "") + format_bytes(abs(rounded))


def _training_fixed(result):
    return max(fit.fixed for fit in result.lap_fits) if result.lap_fits else result.fits["training_peak"].fixed


def _training_per_example(result):
    return max(fit.per_example for fit in result.lap_fits) if result.lap_fits else \
        result.fits["training_peak"].per_example


def _longest_sequence(fits, batch, budget, upper):
    """The largest L whose predicted training peak at ``batch`` fits ``budget`` (bisection; 0 if none)."""
    def peak(length):
        return fits["train_fixed"].predict(length) + batch * fits["train_per_example"].predict(length)

    low, high = 0, upper
    if peak(high) <= budget:
        return high
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if peak(middle) <= budget else (low, middle)
    return low
