"""Only a build hook; all metadata is in pyproject.toml.

The CUDA sources live in the top-level kernels/ (CI compiles them there, and host tests build
them from there), outside the gradflow package. A wheel must carry them anyway: CuPy compiles
them at run time on the user's machine. So build_py copies kernels/*.cu, *.cuh and README.md to
gradflow/_kernels/ in the build, which backends/cuda_kernels.kernels_dir() searches.
"""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

KERNEL_SOURCES = ("*.cu", "*.cuh", "README.md")


class build_py_with_kernels(build_py):
    def run(self):
        super().run()
        source = Path(__file__).resolve().parent / "kernels"
        target = Path(self.build_lib) / "gradflow" / "_kernels"
        files = sorted({path for pattern in KERNEL_SOURCES for path in source.glob(pattern)})
        if not files:
            raise FileNotFoundError(f"no CUDA sources in {source}: a wheel without them cannot use a GPU")
        self.mkpath(str(target))
        for path in files:
            self.copy_file(str(path), str(target / path.name))


setup(cmdclass={"build_py": build_py_with_kernels})
