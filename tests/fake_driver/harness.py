"""swiftlaunch's core against the recording stand-in libcuda (scripts/fake_libcuda.c), with CPU
tensors in place of device memory: the one copy of that setup, used by the fake-driver tests and by
scripts/profile_cpu.py.

The process must have been started with LD_LIBRARY_PATH naming the directory that holds the built
fake as libcuda.so.1 (the dynamic loader reads it at start-up), so that the core's
dlopen("libcuda.so.1") finds it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "scripts" / "fake_libcuda.c"
LIBRARY_NAME = "libcuda.so.1"


def compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc") or shutil.which("clang")


def build(directory, optimize: str = "-O1", defines: tuple[str, ...] = ()) -> Path:
    """Compiles the fake into `directory`/libcuda.so.1; raises FileNotFoundError without a C compiler
    and CalledProcessError (with the compiler's output) when it does not compile."""
    cc = compiler()
    if cc is None:
        raise FileNotFoundError("no C compiler (cc, gcc or clang) on PATH")
    target = Path(directory) / LIBRARY_NAME
    command = [cc, optimize, "-Wall", "-Werror", "-shared", "-fPIC", *(f"-D{name}" for name in defines),
               "-o", str(target), str(SOURCE)]
    subprocess.run(command, check=True, capture_output=True, text=True)
    return target


class Launch(ctypes.Structure):
    """`fake_cuda_launch_t`: one recorded cuLaunchKernelEx call."""

    _fields_ = [
        ("function", ctypes.c_uint64),
        ("grid", ctypes.c_uint32 * 3),
        ("block", ctypes.c_uint32 * 3),
        ("shared_memory", ctypes.c_uint32),
        ("num_attributes", ctypes.c_uint32),
        ("stream", ctypes.c_uint64),
        ("cooperative", ctypes.c_int32),
        ("pdl", ctypes.c_int32),
        ("cluster", ctypes.c_uint32 * 3),
        ("cluster_policy", ctypes.c_int32),
        ("unknown_attributes", ctypes.c_int32),
        ("has_extra", ctypes.c_int32),
        ("result", ctypes.c_int32),
        ("param_count", ctypes.c_int32),
        ("params", ctypes.c_uint64 * 64),
    ]

    @property
    def words(self) -> list[int]:
        return list(self.params[: self.param_count])


class FakeDriver:
    """The fake's recording and switches, through ctypes. `ctypes.CDLL("libcuda.so.1")` resolves to
    the library the core already loaded (one handle, one copy of its state); `of(native)` verifies
    that."""

    def __init__(self):
        lib = ctypes.CDLL(LIBRARY_NAME)
        if not hasattr(lib, "fake_cuda_launch_count"):
            raise RuntimeError(f"the {LIBRARY_NAME} on the library path is not scripts/fake_libcuda.c "
                               "(is LD_LIBRARY_PATH set to the directory of the built fake?)")
        self.lib = lib
        for name, restype, argtypes in [
            ("fake_cuda_record_size", ctypes.c_int, []),
            ("fake_cuda_ring_size", ctypes.c_int, []),
            ("fake_cuda_max_params", ctypes.c_int, []),
            ("fake_cuda_reset", None, []),
            ("fake_cuda_set_param_count", ctypes.c_int, [ctypes.c_int]),
            ("fake_cuda_launch_count", ctypes.c_uint64, []),
            ("fake_cuda_launch", ctypes.c_int, [ctypes.c_uint64, ctypes.POINTER(Launch)]),
            ("fake_cuda_set_device", None, [ctypes.c_int]),
            ("fake_cuda_set_context", None, [ctypes.c_int]),
            ("fake_cuda_set_context_result", None, [ctypes.c_int]),
            ("fake_cuda_set_launch_result", None, [ctypes.c_int]),
            ("fake_cuda_set_pointer_result", None, [ctypes.c_int]),
            ("fake_cuda_add_allocation", ctypes.c_int,
             [ctypes.c_uint64, ctypes.c_uint64, ctypes.c_int, ctypes.c_uint64]),
            ("fake_cuda_clear_allocations", None, []),
            ("fake_cuda_func_attributes", ctypes.c_uint64, [ctypes.POINTER(ctypes.c_uint64 * 3)]),
            ("cuGetErrorString", ctypes.c_int, [ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]),
        ]:
            function = getattr(lib, name)
            function.restype = restype
            function.argtypes = argtypes
        if lib.fake_cuda_record_size() != ctypes.sizeof(Launch) or lib.fake_cuda_max_params() != 64:
            raise RuntimeError("harness.Launch does not match fake_cuda_launch_t in scripts/fake_libcuda.c")
        self.ring_size = lib.fake_cuda_ring_size()

    @classmethod
    def of(cls, native) -> "FakeDriver":
        """The fake, after checking that it is the library the core loaded."""
        fake = cls()
        path = native.driver_info()["library"]
        if ctypes.CDLL(path)._handle != fake.lib._handle:
            raise RuntimeError(f"the core loaded {path}, not the fake libcuda")
        fake.path = path
        return fake

    def reset(self, param_count: int = 0) -> None:
        """Forgets every launch and puts every switch back (device from FAKE_CUDA_DEVICE)."""
        self.lib.fake_cuda_reset()
        self.lib.fake_cuda_set_param_count(param_count)

    def set_param_count(self, count: int) -> int:
        return self.lib.fake_cuda_set_param_count(count)

    def launch_count(self) -> int:
        return self.lib.fake_cuda_launch_count()

    def launch(self, index: int) -> Launch:
        record = Launch()
        if self.lib.fake_cuda_launch(index, ctypes.byref(record)) != 0:
            raise IndexError(f"launch {index} was not recorded or has been overwritten "
                             f"({self.launch_count()} launches, ring of {self.ring_size})")
        return record

    def launches(self, start: int = 0) -> list[Launch]:
        return [self.launch(i) for i in range(start, self.launch_count())]

    def set_device(self, device: int) -> None:
        self.lib.fake_cuda_set_device(device)

    def set_context(self, present: bool) -> None:
        self.lib.fake_cuda_set_context(int(present))

    def set_context_result(self, code: int) -> None:
        self.lib.fake_cuda_set_context_result(code)

    def set_launch_result(self, code: int) -> None:
        self.lib.fake_cuda_set_launch_result(code)

    def set_pointer_result(self, code: int) -> None:
        self.lib.fake_cuda_set_pointer_result(code)

    def add_allocation(self, start: int, size: int, device: int, device_pointer: int | None = None) -> None:
        if self.lib.fake_cuda_add_allocation(start, size, device, start if device_pointer is None else device_pointer):
            raise RuntimeError("the fake's allocation table is full")

    def clear_allocations(self) -> None:
        self.lib.fake_cuda_clear_allocations()

    def func_attributes(self) -> tuple[int, tuple[int, int, int]]:
        """How many cuFuncSetAttribute calls, and the last one's (function, attribute, value)."""
        last = (ctypes.c_uint64 * 3)()
        count = self.lib.fake_cuda_func_attributes(ctypes.byref(last))
        return count, tuple(last)

    def error_string(self, code: int) -> str:
        text = ctypes.c_char_p()
        self.lib.cuGetErrorString(code, ctypes.byref(text))
        return text.value.decode()


def configure_core(stream: int = 0, **overrides):
    """Configures the core as `swiftlaunch._runtime._configure` does, but for CPU tensors under the
    fake driver: the native tensor reader (when torch's C shim checks out) treats CPU memory as the
    launch device's, and the current stream is `stream` (a Python callable stands in for torch's
    CUDA stream query, which would fail without CUDA). `overrides` replace `_native.configure`'s
    arguments by name. Returns `(native, reader_status)`; calling it again reconfigures."""
    import warnings

    import torch
    import triton
    from triton import knobs
    from triton.runtime import _allocation

    from swiftlaunch import _loader, _runtime, _torch_reader

    native = _loader.native
    if native is None:
        raise RuntimeError(f"the Swift core did not load: {_loader.reason}")
    gate = _runtime.triton_gate()
    if gate:
        raise RuntimeError(f"the core would pass every call through: {gate}")
    dtypes = _runtime.triton_dtype_names()
    with warnings.catch_warnings():
        # torch's CUDA runtime finds the fake instead of a driver, and says so when asked for GPUs.
        warnings.filterwarnings("ignore", message="CUDA initialization", category=UserWarning)
        reader, status = _torch_reader.configure_reader(native, dtypes, launch_device_type="cpu")
    arguments = {
        "tensor_types": (torch.Tensor, torch.nn.Parameter),
        "dtypes": dtypes,
        "current_stream": lambda device: stream,
        "runtime_knobs": knobs.runtime,
        "compilation_knobs": knobs.compilation,
        "hook_chain_type": knobs.HookChain,
        "allocator": _allocation._allocator,
        "null_allocator_type": _allocation.NullAllocator,
        "tensor_access": _runtime.tensor_access(),
        "reader": reader,
        "rules": tuple(int(part) for part in _runtime.triton_family(triton.__version__).split(".")),
    }
    unknown = set(overrides) - set(arguments)
    if unknown:
        raise TypeError(f"configure_core: no argument named {sorted(unknown)}")
    arguments.update(overrides)
    native.configure(*arguments.values())
    _runtime._configure_constexpr(native)
    # So that the glue does not configure the core again, for CUDA.
    with _runtime._lock:
        _runtime._configured = True
        _runtime.pass_through_reason = ""
        _runtime.reader_status = status
    return native, status


_binders = {}


def triton_binder(fn):
    """Triton's own argument binder for `fn`, made as `JITFunction.create_binder` makes it for a
    CUDA device (the target is given instead of asked of a driver): `binder(*args, **kwargs)` gives
    `(bound_args, specialization, options)`."""
    entry = _binders.get(id(fn))
    if entry is None:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import make_backend
        from triton.runtime.jit import create_function_from_signature

        backend = make_backend(GPUTarget("cuda", 90, 32))
        # The function is kept with its binder so that its id cannot be reused by another one.
        entry = _binders[id(fn)] = (fn, create_function_from_signature(fn.signature, fn.params, backend))
    return entry[1]


def triton_signature(fn, args, kwargs) -> tuple:
    """The signature Triton compiles `fn` with for this call (`CompiledKernel.src.signature`'s values)."""
    _, specialization, _ = triton_binder(fn)(*args, **kwargs)
    return tuple(kind for kind, _ in specialization)


def insert_stand_in(kernel, args, kwargs, compiled, *, device: int, function: int, num_warps: int = 4,
                    num_ctas: int = 1, shared: int = 0, cooperative: bool = False, pdl: bool = False,
                    scratch_size: int = 0, scratch_align: int = 1, fn=None) -> tuple:
    """Caches `compiled` in the core's `kernel` (`fast(fn)`, or a `_native.Kernel` for `fn`) for the
    call `kernel[grid](*args, **kwargs)` on `device`, as the miss path would after Triton compiled
    it: under the core's own key, with Triton's signature. Returns the signature; raises
    RuntimeError when the core would send the call to Triton or refuses the entry."""
    token = kernel.key(device, *args, **kwargs)
    if token is None:
        raise RuntimeError("the core would send this call to Triton")
    signature = triton_signature(kernel.fn if fn is None else fn, args, kwargs)
    info = (function, num_warps, num_ctas, shared, cooperative, pdl, scratch_size, scratch_align, signature)
    if kernel.insert(token, compiled, info) is not True:
        raise RuntimeError(f"the core did not cache a kernel of signature {signature}")
    return signature
