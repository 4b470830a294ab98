"""Drawing a ``Profile``: measured points and fitted lines against batch size (matplotlib, optional).

matplotlib is the ``plot`` extra (``pip install 'gradflow[plot]'``); it is imported only here and
only when a plot is asked for, with the Agg backend so no display is needed.
"""
from __future__ import annotations

import numpy as np

from .report import format_bytes

INSTALL_HINT = "pip install 'gradflow[plot]'"

# field -> (legend label, colour, marker)
SERIES = {
    "training_peak": ("training peak", "tab:red", "o"),
    "inference_peak": ("inference peak", "tab:blue", "s"),
    "retained": ("retained activations", "tab:green", "^"),
}


def require_matplotlib():
    """Import matplotlib with the Agg backend, or raise ImportError saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(f"plotting needs matplotlib, which is not installed: {INSTALL_HINT}") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_profile(profile, path, budget=None, title=None):
    """Draw ``profile`` (from ``gradflow.memory.profile``) to ``path`` and return the path.

    Log-log axes, so the measured sweep and a batch predicted far beyond it fit on one picture.
    With ``budget`` (bytes) the budget is a horizontal line and the largest training batch under
    it is marked on the training-peak curve.

    >>> import gradflow as gf
    >>> mlp = gf.nn.MLP([64, 32, 10])
    >>> p = gf.memory.profile(mlp, lambda n: (gf.randn(n, 64), gf.randint(0, 10, (n,))), [8, 16, 32])
    >>> from gradflow.memory.plot import plot_profile
    >>> plot_profile(p, "/tmp/memory.png", budget=2**20)   # doctest: +SKIP
    '/tmp/memory.png'
    """
    plt = require_matplotlib()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    sizes = np.asarray(profile.batch_sizes, dtype=np.float64)
    best = profile.max_batch(budget) if budget is not None else None
    right = max(sizes.max(), 1.6 * best if best else 0) * 1.25
    grid = np.geomspace(sizes.min() / 1.25, right, 200)

    fig, ax = plt.subplots(figsize=(9, 5.6), dpi=120)
    handles = []
    if grid[-1] > 2 * sizes.max():  # the picture extrapolates: show where the measurements end
        ax.axvspan(sizes.min(), sizes.max(), color="0.5", alpha=0.08, linewidth=0)
        handles.append(Patch(color="0.5", alpha=0.15, label="measured sweep (beyond it: predicted)"))
    for field, (label, colour, marker) in SERIES.items():
        ax.plot(grid, [profile.predict(n, field) for n in grid], color=colour, linewidth=1.6, alpha=0.85)
        ax.plot(sizes, [row[field] for row in profile.rows], linestyle="none", marker=marker, markersize=7,
                color=colour, markeredgecolor="white", markeredgewidth=0.8)
        # One legend entry per series: the marker is the measurement, the line the fit.
        handles.append(Line2D([], [], color=colour, marker=marker, markeredgecolor="white",
                              label=f"{label}: {_fit_text(profile, field)}"))
    if budget is not None:
        ax.axhline(budget, color="black", linestyle="--", linewidth=1.2)
        handles.append(Line2D([], [], color="black", linestyle="--", label=f"budget {format_bytes(budget)}"))
        if best:
            peak = profile.predict(best)
            ax.axvline(best, color="tab:red", linestyle=":", linewidth=1.2)
            ax.plot([best], [peak], marker="*", markersize=16, color="tab:red", markeredgecolor="black")
            handles.append(Line2D([], [], marker="*", markersize=12, color="tab:red", markeredgecolor="black",
                                  linestyle="none", label=f"predicted max batch {best:,} (training peak "
                                                          f"{format_bytes(peak)})"))
            ax.annotate(f"max batch {best:,}", xy=(best, peak), xytext=(-14, 8), textcoords="offset points",
                        ha="right", va="bottom", fontsize=9, color="tab:red", fontweight="bold")

    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.xaxis.set_major_locator(LogLocator(base=2, numticks=14))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.yaxis.set_major_locator(LogLocator(base=2, numticks=12))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: format_bytes(y)))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlim(grid[0], grid[-1])
    ax.set_xlabel("batch size (examples, log scale)")
    ax.set_ylabel("memory (bytes in KiB/MiB/GiB, log scale)")
    ax.set_title(title or "memory against batch size", fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.95,
              title="markers: measured   lines: fitted", title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_sequence_profiles(profiles, path, budget=None, title=None):
    """Draw a transformer's sweep: ``profiles`` maps sequence length L to its ``Profile``; for each L the
    training peak (solid) and the retained activations (dashed) against batch size, measured points
    and fitted lines, on log-log axes; ``budget`` (bytes) is a horizontal line. Returns ``path``.
    """
    plt = require_matplotlib()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig, ax = plt.subplots(figsize=(9, 5.6), dpi=120)
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(profiles)))
    handles = []
    for colour, (length, profile) in zip(colours, sorted(profiles.items())):
        sizes = np.asarray(profile.batch_sizes, dtype=np.float64)
        grid = np.geomspace(sizes.min(), sizes.max(), 50)
        for field, style, marker in (("training_peak", "-", "o"), ("retained", "--", "^")):
            ax.plot(grid, [profile.predict(n, field) for n in grid], linestyle=style, color=colour, linewidth=1.5)
            ax.plot(sizes, [row[field] for row in profile.rows], linestyle="none", marker=marker, color=colour,
                    markeredgecolor="white", markersize=6)
        handles.append(Line2D([], [], color=colour, marker="o", label=f"L = {length}: {_fit_text(profile, 'training_peak')}"))
    handles += [Line2D([], [], color="0.3", linestyle="-", label="training peak"),
                Line2D([], [], color="0.3", linestyle="--", label="retained activations")]
    if budget is not None:
        ax.axhline(budget, color="black", linestyle=":", linewidth=1.2)
        handles.append(Line2D([], [], color="black", linestyle=":", label=f"budget {format_bytes(budget)}"))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.yaxis.set_major_locator(LogLocator(base=2, numticks=12))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: format_bytes(y)))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("batch size (examples, log scale)")
    ax.set_ylabel("memory (log scale)")
    ax.set_title(title or "memory against batch size and sequence length", fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.95)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _fit_text(profile, field):
    if field == "training_peak" and profile.lap_fits:
        # The training peak is the largest of several lines (see profile.py); show the one that
        # dominates at large batches, which is the one with the most bytes per example.
        fit = max(profile.lap_fits, key=lambda f: (f.per_example, f.fixed))
        return f"{format_bytes(fit.fixed)} + {format_bytes(fit.per_example)}/example at large batches"
    fit = profile.fits[field]
    return f"{format_bytes(fit.fixed)} + {format_bytes(fit.per_example)}/example"
