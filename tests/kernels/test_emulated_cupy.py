"""The emulated CuPy launch (emulated_cupy.py) catches what a device would silently misread;
otherwise test_cuda_table_emulated.py could pass on plumbing that is wrong on a GPU."""
import numpy as np
import pytest

from emulated_cupy import RawModule

SOURCE = """
template <typename T>
__global__ void scale_kernel(const T* x, T* out, long long n, T factor) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)blockDim.x * gridDim.x)
    out[i] = x[i] * factor;
}
"""
NAME = "scale_kernel<float>"


@pytest.fixture
def scale(emulated_cupy):
    cp = emulated_cupy.cupy
    module = cp.RawModule(code=SOURCE, options=("--std=c++17",), name_expressions=(NAME,))
    x = cp.asarray(np.arange(1000, dtype=np.float32))
    out = cp.empty_like(x)

    def launch(*args, grid=(3,), block=(128,)):
        module.get_function(NAME)(grid, block, args)
        return out.get()

    return launch, x, out


def test_correct_arguments_run_every_element(scale):
    launch, x, out = scale
    np.testing.assert_array_equal(launch(x, out, np.int64(1000), np.float32(2)), x.get() * 2)
    # A Python int becomes int64, as CuPy converts it: right for a long long.
    np.testing.assert_array_equal(launch(x, out, 1000, np.float32(3)), x.get() * 3)


@pytest.mark.parametrize("n, factor, message", [
    (np.int32(1000), np.float32(2), r"argument 2 \(long long\): got int32"),
    (np.int64(1000), np.float64(2), r"argument 3 \(float\): got float64"),
    (np.int64(1000), 2.0, r"argument 3 \(float\): got float64"),  # CuPy makes floats float64
    (np.uint64(1000), np.float32(2), r"argument 2 \(long long\): got uint64"),
])
def test_a_scalar_of_the_wrong_c_type_is_refused(scale, n, factor, message):
    launch, x, out = scale
    with pytest.raises(TypeError, match=message):
        launch(x, out, n, factor)


def test_arrays_the_kernel_would_misread_are_refused(emulated_cupy, scale):
    cp = emulated_cupy.cupy
    launch, x, out = scale
    n, factor = np.int64(500), np.float32(2)
    with pytest.raises(TypeError, match="argument 0.*float64 array"):
        launch(cp.asarray(np.zeros(1000)), out, n, factor)
    with pytest.raises(ValueError, match="argument 0.*not C-contiguous"):
        launch(x[::2], out, n, factor)
    with pytest.raises(TypeError, match="argument 0.*host NumPy array"):
        launch(np.zeros(1000, np.float32), out, n, factor)
    with pytest.raises(TypeError, match="null kernelParams entry"):
        launch(None, out, n, factor)
    with pytest.raises(TypeError, match="null pointer"):
        launch(np.uintp(1234), out, n, factor)
    with pytest.raises(TypeError, match="takes 4 arguments"):
        launch(x, out, n)


def test_invalid_launch_shapes_are_refused(scale):
    launch, x, out = scale
    args = (x, out, np.int64(1000), np.float32(2))
    with pytest.raises(ValueError, match="invalid configuration"):
        launch(*args, block=(2048,))
    with pytest.raises(TypeError, match="tuples"):
        launch(*args, grid=[3])


def test_name_expressions_are_resolved_by_the_compiler(emulated_cupy):
    cp = emulated_cupy.cupy
    with pytest.raises(RuntimeError, match="did not compile"):
        cp.RawModule(code=SOURCE, name_expressions=("scale_kernel<flaot>",))
    module = cp.RawModule(code=SOURCE, name_expressions=(NAME,))
    with pytest.raises(KeyError, match="name expressions"):
        module.get_function("scale_kernel<double>")


def test_each_module_source_is_compiled_once(emulated_cupy):
    builder = emulated_cupy.builder
    RawModule(code=SOURCE + "// once\n", name_expressions=(NAME,), emulation=emulated_cupy)
    compiles = builder.compiles
    RawModule(code=SOURCE + "// once\n", name_expressions=(NAME,), emulation=emulated_cupy)
    assert builder.compiles == compiles


def test_fresh_device_memory_reads_as_nan(emulated_cupy):
    # An element a kernel forgets to write cannot pass as a plausible zero.
    assert np.isnan(emulated_cupy.cupy.empty((3, 2), np.float32).get()).all()


def test_implicit_host_copies_of_device_arrays_are_refused(emulated_cupy):
    # CuPy refuses np.asarray/np.array of a device array (no implicit device -> host copy); the
    # emulated array subclasses np.ndarray, so without this a host-only code path passes here.
    cp = emulated_cupy.cupy
    x = cp.asarray(np.arange(3.0))
    for convert in (np.asarray, np.array, np.asanyarray):
        with pytest.raises(TypeError, match="implicit conversion of a cupy.ndarray"):
            convert(x)
        with pytest.raises(TypeError):
            convert(x[0])  # 0-d results of indexing too
    # The explicit copies and host data are unaffected.
    np.testing.assert_array_equal(x.get(), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(cp.asnumpy(x), [0.0, 1.0, 2.0])
    assert type(np.asarray([1.0, 2.0])) is np.ndarray and np.array(np.ones(2)).shape == (2,)
