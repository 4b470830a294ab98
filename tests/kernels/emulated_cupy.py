"""A NumPy-backed stand-in for CuPy, so the CUDA kernel table's launch plumbing
(``gradflow.backends.cuda_kernels``) and the whole CuPy backend run, and are tested, on a
machine without a GPU. This file is the device side (RawModule launches, cuBLAS gemm, the
runtime calls cuda_probe makes); emulated_arrays.py is the array module.

What is real: the exact source ``cuda_kernels`` hands to ``RawModule`` is compiled (by the host
C++ compiler with cuda_host_shim.h, as host_kernels.py builds kernels/), each name expression is
resolved by that compiler, and a launch passes its arguments the way CuPy and the CUDA driver
do: ``kernelParams[i]`` points at argument i's bytes, which the kernel reads as its i-th
parameter type. An array contributes a pointer to a slot holding its data pointer; a NumPy
scalar a pointer to its bytes in its own dtype; a Python int or float is first converted as
CuPy converts it (to int64 or float64, CuPy's ``cupy/cuda/function.pyx: _pointer``).

Where a device would silently misread, the emulation raises instead and names the argument:
a scalar whose C type is not the parameter's (the driver copies sizeof(parameter) bytes, so a
float64 for a float or an int32 for a long long is garbage), an array whose dtype is not the
pointee's, a non-contiguous array (CuPy passes only the data pointer, so the kernel would walk
the wrong elements), a host NumPy array or None (CuPy refuses the first and turns the second
into a null kernelParams entry the driver dereferences), a block of more than 1024 threads.

What a GPU would run is recorded in ``EmulatedCuPy.events`` (kernel launches, cuBLAS calls and
device-to-host copies, each with the gradflow function that issued it; see emulated_arrays.py
for what counts), which ``benchmarks.gpu_step --emulated`` prints and the budget test holds.
There are ``device_count`` devices (2 by default): ``cupy.cuda.Device(n)`` makes n current, and
a launch or cuBLAS call with an operand on another device raises. cuBLAS's argument rule that
each leading dimension is >= 1 is applied as CuPy passes them (an empty array counts as
Fortran-ordered, so a (0, k) operand gets ld = 0). ``cupy.cuda.MemoryHook`` hears every
allocation and free, and NVRTC and a toolkit path with ``cuda_fp16.h`` exist for the probe.

Device memory is NumPy memory: ``EmulatedArray`` (emulated_arrays.py) is an ndarray subclass,
distinct from host arrays as ``cupy.ndarray`` is. ``empty`` fills with all-ones bytes (NaN for
floats), so an element a kernel fails to write shows up in a comparison instead of passing as a
stale zero.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import subprocess
import sys
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import emulated_arrays
from emulated_arrays import EmulatedArray
from host_kernels import HERE, HOST_FLAGS, find_cuda_include, find_cxx

MAX_THREADS_PER_BLOCK = 1024  # every CUDA architecture since Fermi
_LAUNCH_HEADER = HERE / "emulated_launch.h"
_SHIM = HERE / "cuda_host_shim.h"
# The NumPy scalar types CuPy passes as they are ('?bhilqBHILQefdFD' in function.pyx).
_NUMPY_SCALARS = {np.dtype(code).type for code in "?bhilqBHILQefdFD"}
_C_NAMES = {"f2": "__half", "f4": "float", "f8": "double", "i1": "signed char", "i2": "short",
            "i4": "int", "i8": "long long", "u1": "unsigned char or bool", "u2": "unsigned short",
            "u4": "unsigned", "u8": "unsigned long long"}


@dataclass(frozen=True)
class Parameter:
    pointer: bool
    code: str  # kind and byte size of the value, or of the pointee: "f4", "i8"

    @property
    def c_name(self) -> str:
        name = _C_NAMES.get(self.code, self.code)
        return f"{name}*" if self.pointer else name


@dataclass(frozen=True)
class Launch:
    name: str
    grid: int
    block: int


@dataclass(frozen=True)
class Event:
    """One thing a GPU would do: a kernel ``launch`` or a device-to-host ``copy``. ``what`` is the
    kernel or call (``exp``, ``gemm``, ``gradflow::adam...``, ``float()``), ``where`` the gradflow
    function that issued it (``ops/fused.py:forward``)."""
    kind: str
    what: str
    where: str


_GRADFLOW = Path(__file__).resolve().parents[2] / "gradflow"
_PASS_THROUGH = (str(_GRADFLOW / "backends"), str(Path(__file__).resolve().parent))


def issuing_function() -> str:
    """The innermost gradflow function outside the backends (which only forward work) on the
    stack, as ``ops/softmax.py:_cross_entropy``; else the innermost caller outside the emulation."""
    frame = sys._getframe(1)
    fallback = None
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(str(_GRADFLOW)) and not filename.startswith(_PASS_THROUGH[0]):
            return f"{Path(filename).relative_to(_GRADFLOW)}:{frame.f_code.co_name}"
        if fallback is None and not filename.startswith((*_PASS_THROUGH, str(_GRADFLOW))):
            fallback = f"{Path(filename).name}:{frame.f_code.co_name}"
        frame = frame.f_back
    return fallback or "?"


def _code_of(dtype) -> str:
    kind = {"f": "f", "i": "i", "u": "u", "b": "u"}.get(dtype.kind, "?")
    return f"{kind}{dtype.itemsize}"


def _as_kernel_scalar(value):
    """What CuPy does with a non-array argument before taking its bytes."""
    if type(value) in _NUMPY_SCALARS:
        return value
    if value is None:
        raise TypeError("None as a kernel argument: CuPy puts a null kernelParams entry, which the "
                        "driver dereferences; pass np.uintp(0) for a null pointer")
    if isinstance(value, int):  # bool too, as in CuPy
        return np.int64(value)
    if isinstance(value, float):
        return np.float64(value)
    if isinstance(value, complex):
        return np.complex128(value)
    raise TypeError(f"CuPy cannot pass a {type(value).__name__} to a kernel (Unsupported type)")


def pack_arguments(name, parameters, args):
    """The ``void**`` array cuLaunchKernel takes, and the objects that must outlive the launch."""
    if len(args) != len(parameters):
        raise TypeError(f"{name} takes {len(parameters)} arguments "
                        f"({', '.join(p.c_name for p in parameters)}), got {len(args)}")
    params = (ctypes.c_void_p * max(1, len(args)))()
    keep = [params]
    for i, (arg, parameter) in enumerate(zip(args, parameters)):
        where = f"{name} argument {i} ({parameter.c_name})"
        if isinstance(arg, np.ndarray):
            if not isinstance(arg, EmulatedArray):
                raise TypeError(f"{where}: a host NumPy array; CuPy refuses it (Unsupported type)")
            if not parameter.pointer:
                raise TypeError(f"{where}: got an array where the kernel takes a value")
            if _code_of(arg.dtype) != parameter.code:
                raise TypeError(f"{where}: got a {arg.dtype} array; the kernel would read its "
                                "elements as another type")
            if not arg.flags.c_contiguous:
                raise ValueError(f"{where}: array of shape {arg.shape} with strides {arg.strides} "
                                 "is not C-contiguous; the kernel would read the wrong elements")
            slot = ctypes.c_void_p(arg.ctypes.data)
            keep.append(slot)
            params[i] = ctypes.addressof(slot)
            continue
        value = _as_kernel_scalar(arg)
        if parameter.pointer:
            # cuda_kernels passes np.uintp(0) as a null pointer: 8 zero bytes. Any other address
            # would point outside this process's emulated memory.
            if not (value.dtype.kind in "iu" and value.dtype.itemsize == 8 and value == 0):
                raise TypeError(f"{where}: got {value.dtype} {value!r}; only an array or an 8-byte "
                                "integer 0 (a null pointer) can be passed here")
        elif _code_of(value.dtype) != parameter.code:
            raise TypeError(f"{where}: got {value.dtype} ({value.dtype.itemsize} bytes); the kernel "
                            f"would read {parameter.code[1:]} bytes as {parameter.c_name}")
        storage = np.array(value)
        keep.append(storage)
        params[i] = storage.ctypes.data
    return params, keep


def _host_options(options):
    """NVRTC options -> g++ options; an option with no host meaning is refused, not dropped."""
    host = []
    for option in options:
        if option.startswith(("--std=", "-std=")):
            host.append("-std=" + option.split("=", 1)[1])
        elif option.startswith(("-D", "-I")):
            host.append(option)
        else:
            raise NotImplementedError(f"RawModule option {option!r} has no host equivalent here")
    return host


def _launchers(names) -> str:
    lines = [f'\n// ---- emulated_cupy launchers ----\n#include "{_LAUNCH_HEADER}"']
    for i, name in enumerate(names):
        lines.append(
            f'extern "C" void gf_emulated_launch_{i}(unsigned grid, unsigned block, void** params) '
            f"{{ gradflow_emulation::launch(&{name}, grid, block, params); }}\n"
            f'extern "C" const char* gf_emulated_signature_{i}() '
            f"{{ return gradflow_emulation::signature(&{name}); }}")
    return "\n".join(lines) + "\n"


class ModuleBuilder:
    """Compiles RawModule sources for the host, each distinct (source, options, names) once: the
    library is kept on disk under its input's hash and loaded once per process."""

    def __init__(self, cache_dir, cxx: str | None = None):
        self.cache_dir = Path(cache_dir)
        self.cxx = cxx or find_cxx()
        if self.cxx is None:
            raise RuntimeError("no host C++ compiler (g++ or $CXX) for the emulated RawModule")
        self.compiles = 0
        self._loaded: dict[str, tuple] = {}

    def load(self, code: str, options, names):
        """(library, [parameters per name]) for a module."""
        source = code + _launchers(names)
        command = [self.cxx, *_host_options(options), *HOST_FLAGS]
        cuda_include = find_cuda_include()
        if cuda_include is not None:  # CuPy puts the toolkit's headers on NVRTC's path too
            command.append(f"-I{cuda_include}")
        key = hashlib.sha256("\0".join(
            [source, *command, _SHIM.read_text(), _LAUNCH_HEADER.read_text()]).encode()).hexdigest()
        if key not in self._loaded:
            library = self.cache_dir / f"{key[:32]}.so"
            if not library.exists():
                self._compile(command, source, library)
            lib = ctypes.CDLL(str(library))
            signatures = []
            for i in range(len(names)):
                getattr(lib, f"gf_emulated_launch_{i}").argtypes = [
                    ctypes.c_uint, ctypes.c_uint, ctypes.POINTER(ctypes.c_void_p)]
                describe = getattr(lib, f"gf_emulated_signature_{i}")
                describe.restype = ctypes.c_char_p
                signatures.append([Parameter(code.startswith("*"), code.lstrip("*"))
                                   for code in describe().decode().split()])
            self._loaded[key] = (lib, signatures)
        return self._loaded[key]

    def _compile(self, command, source, library):
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        unit = library.with_suffix(".cpp")
        unit.write_text(source)
        # Built under a temporary name and renamed: a concurrent session never loads half a file.
        fd, partial = tempfile.mkstemp(suffix=".so", dir=self.cache_dir)
        os.close(fd)
        result = subprocess.run([*command, "-x", "c++", str(unit), "-o", partial],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            os.unlink(partial)
            raise RuntimeError(f"emulated RawModule: the module source did not compile "
                               f"({unit}):\n{result.stderr[-4000:]}")
        os.replace(partial, library)
        self.compiles += 1


class Function:
    def __init__(self, emulation, name, entry, parameters):
        self.emulation, self.name, self.entry, self.parameters = emulation, name, entry, parameters

    def __call__(self, grid, block, args, shared_mem=0, stream=None):
        if not isinstance(grid, tuple) or not isinstance(block, tuple):
            raise TypeError("grid and block must be tuples (CuPy's Function.__call__ signature)")
        # CuPy pads to three dimensions and raises each to at least 1.
        grid = tuple(max(1, int(d)) for d in (grid + (1, 1))[:3])
        block = tuple(max(1, int(d)) for d in (block + (1, 1))[:3])
        if grid[1:] != (1, 1) or block[1:] != (1, 1) or shared_mem:
            raise NotImplementedError("the host shim runs 1-D launches without shared memory")
        if block[0] > MAX_THREADS_PER_BLOCK or grid[0] >= 2**31:
            raise ValueError(f"{self.name}: launch grid {grid} block {block} is an invalid "
                             "configuration on CUDA devices")
        params, alive = pack_arguments(self.name, self.parameters, list(args))
        for i, arg in enumerate(args):
            if isinstance(arg, EmulatedArray) and arg.device_id != emulated_arrays.DEVICES.current:
                raise ValueError(f"{self.name} argument {i}: the array lives on device "
                                 f"{arg.device_id}, the kernel is launched on device "
                                 f"{emulated_arrays.DEVICES.current}")
        self.emulation.launches.append(Launch(self.name, grid[0], block[0]))
        emulated_arrays.DEVICES.record("launch", self.name)
        self.entry(grid[0], block[0], params)
        # A captured launch replays these very argument bytes (args and alive keep them valid).
        emulated_arrays.captured(self.name, lambda: (args, alive) and self.entry(grid[0], block[0], params))


class RawModule:
    def __init__(self, *, code, options=(), name_expressions=None, emulation=None, **unsupported):
        if unsupported:
            raise NotImplementedError(f"RawModule arguments {sorted(unsupported)} not emulated")
        self.emulation = emulation
        self.names = tuple(name_expressions or ())
        self.lib, self.signatures = emulation.builder.load(code, tuple(options), self.names)

    def get_function(self, name):
        self.emulation.get_function_calls += 1
        if name not in self.names:
            raise KeyError(f"{name!r} is not one of the module's name expressions; CuPy would look "
                           "it up as a mangled symbol and fail")
        i = self.names.index(name)
        return Function(self.emulation, name, getattr(self.lib, f"gf_emulated_launch_{i}"),
                        self.signatures[i])


class EmulatedCuPy:
    """``cupy``, ``cupy.cuda`` and ``cupy.cublas`` modules over one emulated device."""

    def __init__(self, builder: ModuleBuilder, multiprocessors: int = 132, device_count: int = 2):
        self.builder = builder
        self.multiprocessors = multiprocessors
        self.device_count = device_count
        self.launches: list[Launch] = []
        self.events: list[Event] = []
        self.modules = self._make_modules()
        self.cupy = self.modules["cupy"]
        self.get_function_calls = 0

    def install(self, monkeypatch):
        for name, module in self.modules.items():
            monkeypatch.setitem(sys.modules, name, module)
        devices = emulated_arrays.DEVICES
        for name, value in [("count", self.device_count), ("current", 0), ("depth", 0),
                            ("recorder", self._record), ("capture", None)]:
            monkeypatch.setattr(devices, name, value)
        emulated_arrays.refuse_implicit_host_copies(monkeypatch)

    def _record(self, kind, what):
        self.events.append(Event(kind, what, issuing_function()))

    def counts(self, events=None):
        """(launches, device-to-host copies) among ``events`` (all recorded by default)."""
        events = self.events if events is None else events
        return (sum(e.kind == "launch" for e in events), sum(e.kind == "copy" for e in events))

    @staticmethod
    def gemm(transa, transb, a, b, out=None, alpha=1.0, beta=0.0):
        """``cupy.cublas.gemm``'s contract computed with NumPy, with its argument checks. It tests
        what cuda_kernels passes (flags, operand order, alpha and beta), not cuBLAS."""
        ops = {"N": lambda m: m, "T": lambda m: m.T, "H": lambda m: m.T.conj()}
        for trans in (transa, transb):
            if trans not in ops:
                raise TypeError(f"invalid trans (actual: {trans})")
        for operand in (a, b):
            if not isinstance(operand, EmulatedArray):
                raise TypeError("cuBLAS operands must be device arrays")
        assert a.ndim == b.ndim == 2 and a.dtype == b.dtype
        if a.dtype.char not in "fdFD":
            raise TypeError("invalid dtype")
        x, y = ops[transa](a.view(np.ndarray)), ops[transb](b.view(np.ndarray))
        assert x.shape[1] == y.shape[0]
        if out is None:
            out, beta = emulated_arrays.empty((x.shape[0], y.shape[1]), a.dtype, order="F"), 0.0
        assert out.ndim == 2 and out.shape == (x.shape[0], y.shape[1]) and out.dtype == a.dtype
        for name, operand in (("a", a), ("b", b), ("out", out)):
            EmulatedCuPy._check_leading_dimension(name, operand)
        emulated_arrays._check_devices("cublas.gemm", (a, b, out))
        emulated_arrays.DEVICES.record("launch", "cublas.gemm")
        alpha, beta = a.dtype.type(alpha), a.dtype.type(beta)

        def run():
            # cuBLAS does not read C when beta is 0: whatever `out` held (NaN included) is ignored.
            out.view(np.ndarray)[...] = (alpha * (x @ y) if beta == 0
                                         else alpha * (x @ y) + beta * out.view(np.ndarray))

        run()
        emulated_arrays.captured("cublas.gemm", run)
        return out

    @staticmethod
    def _check_leading_dimension(name, operand):
        """cuBLAS takes column-major matrices with a leading dimension ld >= max(1, rows). CuPy
        passes a Fortran-ordered array (tested first) with ld = shape[0] and a C-ordered one as
        its transpose with ld = shape[1]; an empty array is both, so (0, k) gets ld = 0, which
        cuBLAS refuses (CUBLAS_STATUS_INVALID_VALUE) whatever m, n or k are."""
        if not (operand.flags.f_contiguous or operand.flags.c_contiguous):
            # CuPy copies a strided operand to C order first: one more kernel.
            emulated_arrays.DEVICES.record("launch", "ascontiguousarray")
            operand = np.ascontiguousarray(operand.view(np.ndarray))
        ld = operand.shape[0] if operand.flags.f_contiguous else operand.shape[1]
        if ld < 1:
            raise RuntimeError(f"CUBLAS_STATUS_INVALID_VALUE: cublas.gemm {name} of shape "
                               f"{operand.shape} has leading dimension {ld} (cuBLAS needs >= 1)")

    def _make_modules(self):
        emulation = self
        cupy = types.ModuleType("cupy", "gradflow's emulated CuPy (tests/kernels/emulated_cupy.py)")
        cuda = types.ModuleType("cupy.cuda")
        cublas = types.ModuleType("cupy.cublas")

        devices = emulated_arrays.DEVICES

        class Device:
            """``cupy.cuda.Device``: a context manager that makes its device current."""

            def __init__(self, device=None):
                self.id = devices.current if device is None else int(device)
                if not 0 <= self.id < devices.count:
                    raise RuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id} "
                                       f"(the emulation has {devices.count} devices)")
                self._previous = []

            def __enter__(self):
                self._previous.append(devices.current)
                devices.current = self.id
                return self

            def __exit__(self, *exc):
                devices.current = self._previous.pop()
                return False

            def use(self):
                devices.current = self.id

            def synchronize(self):
                pass

            @property
            def attributes(self):
                return {"MultiProcessorCount": emulation.multiprocessors}

        class Graph:
            """``cupy.cuda.graph.Graph``: ``launch`` re-executes every operation the capture
            recorded, on the same memory and with the same kernel argument bytes, and counts
            their launches. ``keep`` holds the memory the capture allocated, as a graph-private
            pool would (the step's intermediates must not be handed to anyone else)."""

            def __init__(self, operations, keep):
                self.operations, self.keep = operations, keep

            def launch(self, stream=None):
                if devices.capture is not None:
                    raise RuntimeError("cudaErrorStreamCaptureUnsupported: Graph.launch while capturing")
                for what, run, result in self.operations:
                    # A memcpy node is no kernel: kind "h2d", counted as neither launch nor copy.
                    devices.record("h2d" if what == "host-to-device" else "launch", what)
                    devices.depth += 1
                    try:
                        fresh = run()
                    finally:
                        devices.depth -= 1
                    if result is not None and fresh is not result:
                        fresh = fresh.view(np.ndarray) if isinstance(fresh, np.ndarray) else fresh
                        np.copyto(result.view(np.ndarray), fresh)

        class Stream:
            """``cupy.cuda.Stream`` with CUDA stream capture. A captured stream runs nothing: the
            emulation computes while capturing (Python needs the arrays), records each device
            operation, and at ``end_capture`` puts back the contents every array allocated
            before ``begin_capture`` had, so only ``Graph.launch`` changes them."""

            def __init__(self, null=False, non_blocking=False, ptds=False):
                self._snapshot = None

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def is_capturing(self):
                return self._snapshot is not None

            def begin_capture(self, mode=None):
                if devices.capture is not None:
                    raise RuntimeError("cudaErrorIllegalState: a stream is already capturing")
                self._snapshot = [(a, a.view(np.ndarray).copy())
                                  for a in list(emulated_arrays._LIVE.values())]
                devices.capture = []

            def end_capture(self):
                if self._snapshot is None:
                    raise RuntimeError("cudaErrorIllegalState: end_capture without begin_capture")
                operations, devices.capture = devices.capture, None
                before = {id(a) for a, _ in self._snapshot}
                for array, contents in self._snapshot:
                    np.copyto(array.view(np.ndarray), contents)
                self._snapshot = None
                keep = [a for a in list(emulated_arrays._LIVE.values()) if id(a) not in before]
                return Graph(operations, keep)

            def synchronize(self):
                pass

        def raw_module(**kwargs):
            return RawModule(emulation=emulation, **kwargs)

        # What cuda_probe asks: a runtime and a driver (CUDA 12.4 as version numbers), one device.
        runtime = types.ModuleType("cupy.cuda.runtime")
        runtime.runtimeGetVersion = runtime.driverGetVersion = lambda: 12040
        runtime.getDeviceCount = lambda: devices.count
        runtime.getDevice = lambda: devices.current
        cuda.runtime = runtime
        # NVRTC and a toolkit path whose include/ holds cuda_fp16.h, as cuda_probe asks for: the
        # emulation compiles with g++, so a stub header stands for the toolkit's.
        nvrtc = types.ModuleType("cupy.cuda.nvrtc")
        nvrtc.getVersion = lambda: (12, 4)
        cuda.nvrtc = nvrtc
        toolkit = self.builder.cache_dir / "emulated_toolkit"
        (toolkit / "include").mkdir(parents=True, exist_ok=True)
        (toolkit / "include" / "cuda_fp16.h").touch()
        cuda.get_cuda_path = lambda: str(toolkit)
        cuda.MemoryHook = emulated_arrays.MemoryHook
        cuda.Device = Device
        cuda.Stream = Stream
        cuda.graph = types.SimpleNamespace(Graph=Graph)
        cuda.is_available = lambda: True
        cublas.gemm = self.gemm
        cupy.cuda, cupy.cublas = cuda, cublas
        cupy.ndarray = EmulatedArray
        cupy.RawModule = raw_module
        for name in ("array", "asarray", "ascontiguousarray", "empty", "empty_like", "asnumpy"):
            setattr(cupy, name, getattr(emulated_arrays, name))
        # Everything else (zeros, exp, where, float32...) is NumPy's, on device arrays.
        cupy.__getattr__ = emulated_arrays.numpy_fallback
        lib = emulated_arrays.lib_modules()
        cupy.lib = lib["cupy.lib"]
        return {"cupy": cupy, "cupy.cuda": cuda, "cupy.cuda.runtime": runtime,
                "cupy.cuda.nvrtc": nvrtc, "cupy.cublas": cublas,
                **emulated_arrays.cupyx_modules(), **lib}


@contextlib.contextmanager
def cuda_device_state(patch):
    """Device "cuda" usable on the emulation while the block runs: everything gradflow caches about
    CUDA is set aside through ``patch`` (a pytest MonkeyPatch) and put back afterwards, so nothing
    after sees the emulation: the probe's answer (the emulation answers it as a machine with one
    device would), the built backend and its array-type entry, and the device 'auto' chose."""
    from gradflow import backends
    from gradflow.backends import cuda_probe, device

    patch.delenv("GRADFLOW_DEVICE", raising=False)  # CI forces the CPU
    patch.setattr(backends, "_cupy_backend", None)
    patch.setattr(device, "_auto_choice", None)
    # Emptied and refilled in place, not replaced: autograd.node holds this dict by reference
    # for its fast backend lookup, and the emulated backend should take that path too.
    by_array_type = dict(backends._by_array_type)
    cuda_probe.why_cuda_unusable.cache_clear()
    try:
        yield
    finally:
        backends._by_array_type.clear()
        backends._by_array_type.update(by_array_type)
        cuda_probe.why_cuda_unusable.cache_clear()


@contextlib.contextmanager
def emulated_cuda(cache_dir=None):
    """Device "cuda" on the emulated CuPy for a block, outside pytest (``benchmarks.gpu_step
    --emulated``): what the ``emulated_cuda`` fixture does, undone on exit."""
    import pytest

    from gradflow.backends import cuda_kernels

    cache_dir = Path(cache_dir or Path(tempfile.gettempdir()) / "gradflow_emulated_cupy")
    emulation = EmulatedCuPy(ModuleBuilder(cache_dir))
    with pytest.MonkeyPatch.context() as patch:
        emulation.install(patch)
        _clear_kernel_caches(cuda_kernels)
        try:
            with cuda_device_state(patch):
                yield emulation
        finally:
            _clear_kernel_caches(cuda_kernels)


def _clear_kernel_caches(cuda_kernels):
    # getattr: the helper also measures older trees, whose table had only these two caches.
    clear = getattr(cuda_kernels, "clear_caches", None)
    if clear is not None:
        clear()
    else:
        cuda_kernels._module.cache_clear()
        cuda_kernels._multiprocessors.cache_clear()
