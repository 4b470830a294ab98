"""The CUDA kernel table's Python side, without a device: source assembly, names, dtype
dispatch, and (where nvcc or NVRTC is installed) that what it asks CuPy to build compiles."""
import ctypes
import ctypes.util
import glob
import inspect
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from gradflow.backends import cuda_kernels, numpy_kernels
from gradflow.errors import DTypeError
from host_kernels import find_cuda_include

FILES = sorted({source for source, _ in cuda_kernels.KERNELS.values()})
DTYPES = [np.float16, np.float32, np.float64]


def activation_list_in_header():
    text = (cuda_kernels.kernels_dir() / "activations.cuh").read_text()
    block = text[text.index("#define GRADFLOW_ACTIVATIONS(X)"):].split("\n\n")[0]
    return {name: (struct, saves) for name, struct, saves in
            re.findall(r"X\((\w+), (\w+), (\w+)\)", block)}


def test_activation_lists_agree_across_header_table_and_twin():
    header = activation_list_in_header()
    assert {name: struct for name, (struct, _) in header.items()} == cuda_kernels.ACTIVATION_STRUCTS
    assert {name: saves for name, (_, saves) in header.items()} == numpy_kernels.ACTIVATION_SAVES


def public_functions(module):
    return {name: inspect.signature(value) for name, value in vars(module).items()
            if inspect.isfunction(value) and value.__module__ == module.__name__
            and not name.startswith("_")}


def test_every_twin_has_a_cuda_counterpart_with_the_same_signature():
    cuda = public_functions(cuda_kernels)
    for name, signature in public_functions(numpy_kernels).items():
        assert name in cuda, f"numpy_kernels.{name} has no CUDA counterpart"
        assert cuda[name] == signature, f"{name}: {cuda[name]} != twin's {signature}"


@pytest.mark.parametrize("filename", FILES)
def test_assembled_source_inlines_each_local_header_once(filename):
    source = cuda_kernels.assemble_source(filename)
    assert not re.search(r'#\s*include\s+"', source), "a local include was left for NVRTC"
    assert source.count("// ---- begin common.cuh ----") == 1
    assert "#include <cuda_fp16.h>" in source  # system headers stay for NVRTC
    for kernel, (source_file, _) in cuda_kernels.KERNELS.items():
        assert (f"void {kernel}(" in source) == (source_file == filename), kernel


def test_assembly_names_a_missing_header(tmp_path):
    (tmp_path / "broken.cu").write_text('#include "nowhere.cuh"\n')
    with pytest.raises(FileNotFoundError, match="nowhere.cuh"):
        cuda_kernels.assemble_source("broken.cu", tmp_path)


def test_kernels_dir_override_and_error(monkeypatch, tmp_path):
    (tmp_path / "activations.cuh").write_text("")
    monkeypatch.setenv("GRADFLOW_KERNELS_DIR", str(tmp_path))
    assert cuda_kernels.kernels_dir() == tmp_path
    monkeypatch.setattr(cuda_kernels, "__file__", str(tmp_path / "a" / "b" / "c.py"))
    monkeypatch.setenv("GRADFLOW_KERNELS_DIR", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="GRADFLOW_KERNELS_DIR"):
        cuda_kernels.kernels_dir()


def test_dtype_dispatch_to_c_types():
    assert [cuda_kernels.c_type(d) for d in DTYPES] == ["__half", "float", "double"]
    assert cuda_kernels.compute_scalar_type(np.float16) is np.float32
    assert cuda_kernels.compute_scalar_type(np.float64) is np.float64
    with pytest.raises(DTypeError, match="int32"):
        cuda_kernels.c_type(np.int32)


def test_name_expressions():
    assert (cuda_kernels.name_expression("act_backward_kernel", np.float32, "gelu_tanh")
            == "gradflow::act_backward_kernel<gradflow::GeluTanh, float>")
    assert (cuda_kernels.name_expression("adam_update_kernel", np.float16)
            == "gradflow::adam_update_kernel<__half>")
    with pytest.raises(KeyError, match="swish"):
        cuda_kernels.name_expression("act_forward_kernel", np.float32, "swish")


def test_module_spec_builds_half_only_when_asked():
    _, options32, names32 = cuda_kernels.module_spec("activation.cu", np.float32)
    _, options16, names16 = cuda_kernels.module_spec("activation.cu", np.float16)
    assert "-DGRADFLOW_HALF" in options16 and "-DGRADFLOW_HALF" not in options32
    assert len(names32) == len(names16) == 3 * len(cuda_kernels.ACTIVATION_STRUCTS)
    assert all("<gradflow::" in name and name.endswith(", __half>") for name in names16)


@pytest.mark.parametrize("threads, sms, blocks", [(0, 132, 1), (1, 132, 1), (256, 132, 1),
                                                  (257, 132, 2), (10**9, 132, 32 * 132)])
def test_grid_size(threads, sms, blocks):
    assert cuda_kernels.grid_size(threads, sms) == blocks


def test_adam_scalars_are_the_twins_terms():
    beta1, one_minus_beta1, beta2, _, step_size, bc2_sqrt, eps, wd, decay = \
        cuda_kernels.adam_scalars(3, 1e-3, 0.9, 0.999, 1e-8, 0.1, np.float64)
    assert (beta1, one_minus_beta1, beta2, eps, wd) == (0.9, 1 - 0.9, 0.999, 1e-8, 0.1)
    assert step_size == 1e-3 / (1 - 0.9 ** 3) and bc2_sqrt == (1 - 0.999 ** 3) ** 0.5
    assert decay == 1 - 1e-3 * 0.1
    with pytest.raises(ValueError, match="from 1"):
        cuda_kernels.adam_scalars(0, 1e-3, 0.9, 0.999, 1e-8, 0.0, np.float32)


# ---- what CuPy will compile, compiled here ----

@pytest.mark.parametrize("filename", FILES)
def test_name_expressions_instantiate_with_nvcc(tmp_path, filename):
    """nvcc stands in for NVRTC: the assembled source plus a reference to every name
    expression (all dtypes in one unit, to keep this quick) must compile, so each name CuPy will
    ask for exists with that spelling."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not found: cannot compile the assembled CUDA source here")
    source, options, _ = cuda_kernels.module_spec(filename, np.float16)
    names = [name for dtype in DTYPES for name in cuda_kernels.module_spec(filename, dtype)[2]]
    references = ",\n".join(f"  reinterpret_cast<const void*>(&{name})" for name in names)
    unit = tmp_path / "unit.cu"
    unit.write_text(f"{source}\nextern const void* const gradflow_kernel_refs[];\n"
                    f"const void* const gradflow_kernel_refs[] = {{\n{references}\n}};\n")
    result = subprocess.run([nvcc, *options, "-arch=sm_80", "-Werror", "all-warnings", "-c",
                             str(unit), "-o", str(tmp_path / "unit.o")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def find_nvrtc():
    """libnvrtc from the nvidia-cuda-nvrtc wheel, a CUDA toolkit, or the loader path."""
    candidates = []
    for entry in sys.path:
        candidates += glob.glob(f"{entry}/nvidia/cuda_nvrtc/lib/libnvrtc.so*")
        candidates += glob.glob(f"{entry}/nvidia/cu*/lib/libnvrtc.so*")
    candidates += glob.glob("/usr/local/cuda*/lib64/libnvrtc.so*")
    found = ctypes.util.find_library("nvrtc")
    candidates += [found] if found else []
    for candidate in candidates:
        try:
            return ctypes.CDLL(candidate)
        except OSError:
            continue
    return None


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("filename", FILES)
def test_modules_compile_with_nvrtc(filename, dtype):
    """The exact CuPy path: NVRTC, no C library headers, templates instantiated by name."""
    nvrtc = find_nvrtc()
    if nvrtc is None:
        pytest.skip("libnvrtc not found (pip install nvidia-cuda-nvrtc-cu12 to run this check)")
    source, options, names = cuda_kernels.module_spec(filename, dtype)
    options = [*options, "--gpu-architecture=compute_80"]
    if np.dtype(dtype) == np.float16:
        # CuPy adds the directory holding cuda_fp16.h itself; here a CUDA toolkit provides it.
        include = find_cuda_include()
        if include is None:
            pytest.skip("cuda_fp16.h not found for the __half module")
        options.append(f"-I{include}")
    program = ctypes.c_void_p()
    assert nvrtc.nvrtcCreateProgram(ctypes.byref(program), source.encode(), b"unit.cu", 0,
                                    None, None) == 0
    for name in names:
        assert nvrtc.nvrtcAddNameExpression(program, name.encode()) == 0
    option_array = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
    status = nvrtc.nvrtcCompileProgram(program, len(options), option_array)
    log_size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(log_size))
    log = ctypes.create_string_buffer(log_size.value)
    nvrtc.nvrtcGetProgramLog(program, log)
    assert status == 0, log.value.decode()
    for name in names:
        lowered = ctypes.c_char_p()
        assert nvrtc.nvrtcGetLoweredName(program, name.encode(), ctypes.byref(lowered)) == 0
        assert lowered.value.startswith(b"_Z")
    nvrtc.nvrtcDestroyProgram(ctypes.byref(program))
