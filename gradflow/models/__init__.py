"""Model builders, one file per family, each usable from Python and from ``gradflow train --model``.

A family registers its builder with ``@register("name")``; the CLI only parses flags and calls
``build(name, **options)``.
"""
from __future__ import annotations

BUILDERS = {}


def register(name):
    """Record ``builder`` under ``name`` for :func:`build` and the CLI's ``--model`` choices."""
    def record(builder):
        BUILDERS[name] = builder
        return builder
    return record


def build(name, **options):
    """The model family ``name`` built with ``options``; a ValueError lists the known names."""
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(BUILDERS)) or 'none'}")
    return BUILDERS[name](**options)


from . import cnn, transformer  # noqa: E402,F401  (each family registers its builder on import)
