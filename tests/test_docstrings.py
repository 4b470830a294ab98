"""Every example in gradflow's docstrings runs and prints what it says (doctest).

Examples use ``gradflow`` or ``gf`` without importing it, as the docs are read; each module's
examples start from the same seed. Examples that need ``mpirun`` are marked ``+SKIP`` in place.
An example that needs an optional extra which is not installed (mpi4py, torch, safetensors,
matplotlib, cupy) is skipped with the extra's name, with the rest of its docstring, so
``pip install -e '.[test]' && pytest`` passes without the extras.
"""
import doctest
import importlib
import pkgutil

import pytest

import gradflow

MODULES = sorted(info.name for info in pkgutil.walk_packages(gradflow.__path__, "gradflow.")
                 if not info.name.startswith("gradflow.cli.") and info.name != "gradflow.__main__")
# Top-level packages of the optional extras (pyproject.toml), and the extra that installs each.
OPTIONAL = {"mpi4py": "distributed", "mpich": "distributed", "torch": "PyTorch (CPU)", "safetensors": "interop",
            "matplotlib": "plot", "cupy": "cuda12/cuda13", "cupyx": "cuda12/cuda13"}


def missing_optional(exception):
    """The optional package whose absence caused ``exception`` (anywhere in its chain), or None."""
    while exception is not None:
        if isinstance(exception, ImportError) and (exception.name or "").split(".")[0] in OPTIONAL:
            return exception.name.split(".")[0]
        exception = exception.__cause__ or exception.__context__
    return None


class Runner(doctest.DocTestRunner):
    """Stops judging a docstring at its first example that fails for want of an optional package."""

    def run(self, test, *args, **kwargs):
        self.missing = None
        return super().run(test, *args, **kwargs)

    def report_unexpected_exception(self, out, test, example, exc_info):
        if self.missing is None:
            self.missing = missing_optional(exc_info[1])
        if self.missing is None:
            super().report_unexpected_exception(out, test, example, exc_info)

    def report_failure(self, out, test, example, got):
        if self.missing is None:  # later examples of that docstring build on the one that could not run
            super().report_failure(out, test, example, got)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional dependency (mpi4py, matplotlib) missing here
        pytest.skip(f"{name} needs {exc.name}")
    gradflow.manual_seed(0)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = Runner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    failed, skipped = 0, []
    for test in finder.find(module, globs={**vars(module), "gradflow": gradflow, "gf": gradflow}):
        result = runner.run(test)
        if runner.missing is not None:
            skipped.append(f"{test.name} needs {runner.missing} ({OPTIONAL[runner.missing]} extra)")
        else:
            failed += result.failed
    assert failed == 0, f"{failed} examples in {name} failed (output above)"
    if skipped:
        pytest.skip("; ".join(skipped))


def test_an_example_that_needs_a_missing_extra_is_skipped_not_failed(monkeypatch):
    """What a fresh `pip install -e '.[test]'` sees: mpi4py absent, so ``dist.init()``'s example skips."""
    import sys

    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setitem(sys.modules, "mpi4py.MPI", None)
    module = importlib.import_module("gradflow.distributed.runtime")
    monkeypatch.setitem(module._state, "mpi", None)
    runner = Runner(optionflags=doctest.ELLIPSIS)
    [test] = [t for t in doctest.DocTestFinder().find(module) if t.name.endswith("runtime.init")]
    runner.run(test, out=lambda text: None)
    assert runner.missing == "mpi4py"
    broken = doctest.DocTestParser().get_doctest(">>> 1 + 1\n3\n", {}, "broken", None, 0)
    assert runner.run(broken, out=lambda text: None).failed == 1 and runner.missing is None
