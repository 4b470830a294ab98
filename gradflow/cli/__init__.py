"""The ``gradflow`` command: one subcommand per module in this package.

Each subcommand module defines ``register(subparsers)``, which adds its parser and sets
``func`` (``args -> exit code``) as the parser default. Errors meant for the user are raised
as ``CommandError`` and printed as one line, with a non-zero exit and no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import GradflowError

SUBCOMMAND_MODULES = ("train", "memory", "graph")


class CommandError(GradflowError):
    """A problem with the command's input, reported as one line (exit code 2)."""


def check_seed(seed, flag="--seed"):
    """A seed is a non-negative integer; say so by the flag's name, not the generator's."""
    if seed < 0:
        raise CommandError(f"{flag} must be a non-negative integer, got {seed}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gradflow", description="Train, profile and inspect gradflow models.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (CommandError, GradflowError, FileNotFoundError, ValueError) as exc:
        print(f"gradflow {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`gradflow train | head`): stop quietly as Unix tools do, with
        # stdout pointed at /dev/null so the interpreter's final flush cannot raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
