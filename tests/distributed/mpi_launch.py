"""Run a script under ``mpirun -n N`` for the distributed tests, or say why that cannot happen here.

The mpirun next to this Python (what the ``mpich`` wheel installs) is preferred over one on PATH,
so the launcher always matches the MPI library mpi4py loads.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).parent / "scripts"
INSTALL = "pip install 'gradflow[distributed]'  (mpi4py + the mpich wheel)"


def find_mpirun():
    beside = Path(sys.executable).parent / "mpirun"
    if beside.exists():
        return str(beside)
    return shutil.which("mpirun") or shutil.which("mpiexec")


def why_unavailable():
    """None when mpi4py imports and an mpirun exists, else the reason to skip."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return f"mpi4py is not installed: {INSTALL}"
    if find_mpirun() is None:
        return f"no mpirun/mpiexec found beside {sys.executable} or on PATH: {INSTALL}"
    return None


def run_mpi(script, n=2, timeout=60, args=(), env=None):
    """``mpirun -n n python scripts/<script> args``; returns the CompletedProcess (text output)."""
    return run_python([str(SCRIPTS / script), *map(str, args)], n, timeout, env)


def run_python(python_args, n=2, timeout=60, env=None):
    """``mpirun -n n python python_args`` (``n=None``: plain python), one BLAS thread per process."""
    full_env = dict(os.environ, GRADFLOW_DEVICE=os.environ.get("GRADFLOW_DEVICE", "cpu"), OMP_NUM_THREADS="1",
                    OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]), **(env or {}))
    launcher = [] if n is None else [find_mpirun(), "-n", str(n)]
    command = [*launcher, sys.executable, *map(str, python_args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=full_env)


def check_ok(result, n=2):
    """Assert the run exited 0 and every rank printed its ``OK rank r`` line."""
    report = f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert result.returncode == 0, report
    for r in range(n):
        assert f"OK rank {r}" in result.stdout, report
