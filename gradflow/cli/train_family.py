"""``gradflow train --model NAME`` for a model family of ``gradflow.models`` other than the MLP.

The family's builder says what it trains on: ``builder.load_data(task, seed)`` gives the
Dataset (its features already the model's input, e.g. integer tokens), ``builder.tasks`` the
choices of ``--task``, and ``build(name, dataset=...)`` the model. The training loop, progress
bar, memory column, optimizer flags, ``--device`` and ``--save``/``--resume`` are the MLP's.
"""
from __future__ import annotations

from . import CommandError
from .train import (COLUMNS, DEFAULTS, resume, _check_settings, _describe_optimizer, _make_optimizer,
                    _optimizer_settings, _row, _train_epoch, check_save_path)

FAMILY_DEFAULTS = {"epochs": 3, "lr": 3e-3}


def _family(name):
    from ..models import BUILDERS

    builder = BUILDERS.get(name)
    if builder is None or not hasattr(builder, "load_data"):
        raise CommandError(f"model {name!r} cannot be trained from the command line")
    return builder


def run_family(args):
    import gradflow as gf
    from ..backends import resolve as resolve_device
    from ..backends.device import describe_choice
    from ..checkpoint_io import CheckpointError, load_checkpoint, save_checkpoint
    from ..data import BatchIterator, DatasetError
    from ..models import build
    from ..nn.functional import cross_entropy

    builder = _family(args.model)
    checkpoint = None
    task = args.task
    if args.resume:
        try:
            checkpoint = load_checkpoint(args.resume)
        except CheckpointError as exc:
            raise CommandError(str(exc)) from None
        if checkpoint.config.get("model") != args.model:
            raise CommandError(f"checkpoint {args.resume!r} holds model {checkpoint.config.get('model', 'mlp')!r}, "
                               f"not {args.model!r}")
        task = task or checkpoint.config.get("task")
    # The task may bring its own epochs, lr and batch size (builder.task_training); flags win.
    defaults = {**FAMILY_DEFAULTS, "batch_size": DEFAULTS["batch_size"],
                **getattr(builder, "task_training", {}).get(task or getattr(builder, "default_task", None), {})}
    args.epochs = defaults["epochs"] if args.epochs is None else args.epochs
    args.batch_size = defaults["batch_size"] if args.batch_size is None else args.batch_size
    _check_settings(args)
    check_save_path(args.save)
    optimizer_name, given = _optimizer_settings(args, checkpoint)
    if checkpoint is None and optimizer_name == "adam":
        given.setdefault("lr", defaults["lr"])
    tasks = getattr(builder, "tasks", ())
    if task is not None and tasks and task not in tasks:
        raise CommandError(f"--task {task!r} is not a task of model {args.model!r}; choose one of {', '.join(tasks)}")
    try:
        dataset = builder.load_data(task)
    except DatasetError as exc:
        raise CommandError(str(exc)) from None
    device = resolve_device(args.device)

    gf.manual_seed(args.seed)
    model = build(args.model, dataset=dataset).to(device)
    optimizer = _make_optimizer(optimizer_name, given, model, args.model)
    start_epoch = resume(args, checkpoint, model, optimizer, given) if checkpoint is not None else 0
    batches = BatchIterator(dataset.x_train, dataset.y_train, batch_size=args.batch_size, shuffle=True,
                            seed=args.seed, device=device)
    batches.skip_epochs(start_epoch)
    if getattr(args, "distributed", False):  # data-parallel under mpirun, as the MLP: gradflow/distributed/cli.py
        from ..distributed.cli import distribute

        optimizer, batches = distribute(args, model, optimizer, batches)
    print(f"gradflow train: {dataset!r} on {describe_choice(args.device, device)}; model {args.model} "
          f"({type(model).__name__}), {sum(p.numel() for p in model.parameters())} parameters; "
          f"{type(optimizer).__name__} {_describe_optimizer(optimizer)}; batch size {args.batch_size}",
          flush=True)
    if dataset.info.get("per_token"):
        print(f"accuracy columns are whole-sequence accuracy: a sequence counts only if all "
              f"{dataset.x_train.shape[1]} positions are right", flush=True)
    print(_row(COLUMNS), flush=True)
    test_acc = None
    for epoch in range(start_epoch + 1, args.epochs + 1):
        test_acc = _train_epoch(model, optimizer, batches, cross_entropy, epoch, args, device, dataset.x_test,
                                dataset.y_test)
        if args.save:
            save_checkpoint(args.save, model, optimizer, epoch=epoch,
                            config={"model": args.model, "task": dataset.info.get("task")})
    print(f"final test accuracy: {test_acc:.4f} ({round(test_acc * len(dataset.x_test))}/{len(dataset.x_test)})")
    return 0


def family_checkpoint(path):
    """The checkpoint at ``path`` if a family that brings its own data wrote it, else None."""
    from ..checkpoint_io import CheckpointError, load_checkpoint

    try:
        checkpoint = load_checkpoint(path)
    except CheckpointError:
        return None  # the MLP path reports it
    from ..models import BUILDERS

    return checkpoint if hasattr(BUILDERS.get(checkpoint.config.get("model", "mlp")), "load_data") else None


def run_family_eval(args, checkpoint):
    from ..backends import resolve as resolve_device
    from ..checkpoint_io import CheckpointError, restore
    from ..models import build
    from .train import _accuracy

    name, task = checkpoint.config["model"], checkpoint.config.get("task")
    if args.dataset is not None:
        raise CommandError(f"--dataset does not apply to a {name} checkpoint; it evaluates on its task {task!r}")
    dataset = _family(name).load_data(task)
    device = resolve_device(args.device)
    model = build(name, dataset=dataset).to(device)
    try:
        restore(checkpoint, model)
    except CheckpointError as exc:
        raise CommandError(str(exc)) from None
    train_acc = _accuracy(model, dataset.x_train, dataset.y_train, device)
    test_acc = _accuracy(model, dataset.x_test, dataset.y_test, device)
    print(f"gradflow eval: {args.checkpoint} (epoch {checkpoint.epoch}, model {name}) on {dataset!r}")
    print(f"train accuracy: {train_acc:.4f}")
    print(f"test accuracy: {test_acc:.4f} ({round(test_acc * len(dataset.y_test))}/{len(dataset.y_test)})")
    return 0
