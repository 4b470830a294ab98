"""Byte formatting and the tracker's tables (by op, by module)."""
from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "k": 2**10, "m": 2**20, "g": 2**30}


def parse_bytes(text):
    """``"8GiB"`` -> 8589934592; accepts B, kB/MB/GB (powers of 1000) and KiB/MiB/GiB (of 1024)."""
    if isinstance(text, (int, float)):
        return int(text)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"cannot read {text!r} as a size: write e.g. 8GiB, 512MiB, 2GB or 1048576")
    return int(float(match.group(1)) * _UNITS[unit])


def format_bytes(n):
    """Bytes in binary units, three significant figures: 1.50 MiB."""
    n = float(n)
    if abs(n) < 1024:
        return f"{int(n)} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        # Three significant figures cannot show 999.5-1023.9 without an exponent: use the next unit.
        if abs(n) < 999.5 or unit == "TiB":
            return f"{n:.3g} {unit}"


def group(buffers, field, kind):
    """{op or module: {"bytes", "share", "count"}} over buffers of ``kind``, largest first."""
    rows = {}
    for buffer in buffers:
        if kind is not None and buffer.kind != kind:
            continue
        name = getattr(buffer, field) or "(top level)"
        row = rows.setdefault(name, {"bytes": 0, "share": 0.0, "count": 0})
        row["bytes"] += buffer.nbytes
        row["count"] += 1
    total = sum(r["bytes"] for r in rows.values())
    for row in rows.values():
        row["share"] = row["bytes"] / total if total else 0.0
    return dict(sorted(rows.items(), key=lambda item: -item[1]["bytes"]))


def table(headers, rows):
    """A plain left/right aligned text table (numbers right-aligned)."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [all(_looks_numeric(r[i]) for r in cells) if cells else False for i in range(len(headers))]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _looks_numeric(text):
    return bool(re.match(r"^[-+]?[0-9.]+( ?[A-Za-z%]*)?$", text))


def format_report(tracker, at):
    buffers = tracker.live_buffers(at)
    title = "retained now" if at == "now" else "retained at peak"
    parts = [f"activation memory ({title}): {format_bytes(sum(b.nbytes for b in buffers if b.kind == 'activation'))}"
             f"   peak {format_bytes(tracker.peak_bytes)}"]
    for field, header in (("op", "op"), ("module", "module")):
        rows = group(buffers, field, "activation")
        parts.append(table([header, "bytes", "share", "count"],
                           [[name, format_bytes(r["bytes"]), f"{100 * r['share']:.1f}%", r["count"]]
                            for name, r in rows.items()]))
    others = [(k, sum(b.nbytes for b in buffers if b.kind == k)) for k in ("input", "parameter")]
    parts.append("also saved (exist anyway): " + ", ".join(f"{k}s {format_bytes(v)}" for k, v in others))
    return "\n\n".join(parts)
