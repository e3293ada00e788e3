"""Turns on native allocation of the Helion native run's outputs (`TensorAllocation.swift`: torch's
`at::empty_strided` through AOTInductor's C shim, wrapped by torch's own `THPVariable_Wrap`) only
after checking, on probes, that it gives what torch's Python factory gives; otherwise every planned
allocation stays a call of the wrapper's own torch function. `status` says which, and why.

Checked on every CUDA device, per probe layout and dtype, against `torch.empty_strided`: the exact
type, sizes, strides, dtype, device, storage offset and size, layout, contiguity, `requires_grad`,
leaf-ness, names, version counter, inference-ness (outside and inside `torch.inference_mode()`),
reference counts (Python object and TensorImpl), the caching allocator's byte count while the tensor
lives and after it is dropped, and the memory's fill in deterministic mode.
"""

from __future__ import annotations

import os
import sys

ENV = "SWIFTLAUNCH_NATIVE_ALLOCATION"

status = "off (not configured)"

# (sizes, strides) of the probes: contiguous, empty, 0-dim, a size-1 dim, channels_last, transposed,
# gapped (what `empty_strided` with user strides gives), 5 dims.
PROBE_LAYOUTS = [
    ((4096,), (1,)),
    ((0, 3), (3, 1)),
    ((), ()),
    ((7, 1), (1, 1)),
    ((2, 3, 4, 5), (60, 1, 15, 3)),
    ((16, 8), (1, 16)),
    ((4, 4), (8, 1)),
    ((2, 1, 3, 1, 2), (6, 6, 2, 2, 1)),
]


def _dtypes():
    import torch

    return [torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int8, torch.uint8,
            torch.bool, torch.float64, torch.complex64]


def _describe(tensor) -> tuple:
    import torch

    channels_last = tensor.dim() == 4 and tensor.is_contiguous(memory_format=torch.channels_last)
    return (type(tensor), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype, tensor.device,
            tensor.storage_offset(), tensor.layout, tensor.is_contiguous(), channels_last, tensor.requires_grad,
            tensor.is_leaf, tensor.grad_fn, tensor.names, None if tensor.is_inference() else tensor._version,
            tensor.is_inference(),
            tensor._use_count(), sys.getrefcount(tensor))


def _storage(tensor) -> tuple:
    storage = tensor.untyped_storage()
    return storage.nbytes(), storage.resizable()


def layout_of(native, tensor):
    """`(sizes, strides, dtype_code, device_type, device_index)` of a tensor, in the codes of torch's C
    shim (read through the native reader, which the glue checked against torch's accessors)."""
    device_type, device_index, dtype_code = native.read_tensor(tensor)[:3]
    return tuple(tensor.shape), tuple(tensor.stride()), dtype_code, device_type, device_index


def _compare(native, device: str, sizes, strides, dtype) -> str | None:
    import torch

    expected = torch.empty_strided(sizes, strides, dtype=dtype, device=device)
    made = native.torch_allocate(layout_of(native, expected), expected.element_size())
    # Both hold one reference from a local name, one from the call's argument.
    if _describe(made) != _describe(expected):
        return f"{_describe(made)} where torch made {_describe(expected)}"
    if _storage(made) != _storage(expected):
        return f"storage {_storage(made)} where torch's is {_storage(expected)}"
    return None


def _memory_check(native, device: str) -> str | None:
    """The caching allocator's count grows by the same bytes and falls back when the tensor goes."""
    import torch

    index = torch.device(device).index
    torch.cuda.synchronize(index)
    base = torch.cuda.memory_allocated(index)
    expected = torch.empty(1 << 18, device=device)
    grown = torch.cuda.memory_allocated(index) - base
    del expected
    made = native.torch_allocate(layout_of(native, torch.empty(1 << 18, device=device)), 4)
    if torch.cuda.memory_allocated(index) - base != grown:
        return f"native allocation grew the caching allocator by {torch.cuda.memory_allocated(index) - base}, torch by {grown}"
    del made
    if torch.cuda.memory_allocated(index) != base:
        return "a dropped native tensor did not return its memory"
    return None


def _deterministic_check(native, device: str) -> str | None:
    """In deterministic mode torch fills new memory (NaN, or the largest integer): so must this."""
    import torch

    was, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        for dtype in (torch.float32, torch.int32):
            expected = torch.empty(64, dtype=dtype, device=device)
            made = native.torch_allocate(layout_of(native, expected), expected.element_size())
            if not torch.equal(made.isnan() if dtype.is_floating_point else made,
                               expected.isnan() if dtype.is_floating_point else expected):
                return f"in deterministic mode its {dtype} memory is not filled as torch fills it"
    finally:
        torch.use_deterministic_algorithms(was, warn_only=warn_only)
    return None


def _validate(native, devices: list[str]) -> str | None:
    import torch

    for device in devices:
        for dtype in _dtypes():
            for sizes, strides in PROBE_LAYOUTS:
                why = _compare(native, device, sizes, strides, dtype)
                if why:
                    return why
        with torch.inference_mode():
            why = _compare(native, device, (64,), (1,), torch.float32)
        if why:
            return f"in inference mode: {why}"
        if device.startswith("cuda"):
            why = _memory_check(native, device) or _deterministic_check(native, device)
            if why:
                return why
    return None


def configure(native, device_type: str = "cuda") -> str:
    """Validates and turns native allocation on for `device_type` ("cuda"; "cpu" only for the CPU
    tests, whose interpreter runs Helion on CPU tensors), or leaves it off; returns and keeps the
    status line."""
    global status
    import torch

    native.torch_allocator_configure(None)
    setting = os.environ.get(ENV, "").strip()
    if setting == "0":
        status = f"off ({ENV}=0)"
        return status
    if setting not in ("", "1"):
        status = f"off ({ENV}={setting!r} is neither '0' nor '1')"
        return status
    from . import _runtime

    if not _runtime.reader_status.startswith("native"):
        status = "off (needs the native tensor reader)"
        return status
    if device_type == "cuda":
        if not torch.cuda.is_available():
            status = "off (no CUDA device)"
            return status
        devices = [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    elif device_type == "cpu":
        devices = ["cpu"]
    else:
        raise ValueError(f"device_type {device_type!r}")
    library = os.path.join(os.path.dirname(torch.__file__), "lib")
    try:
        native.torch_allocator_probe(os.path.join(library, "libtorch_cpu.so"),
                                     os.path.join(library, "libtorch_python.so"))
        why = _validate(native, devices)
    except (RuntimeError, TypeError, ValueError, OSError, AttributeError) as error:
        why = f"could not be set up: {error}"
    if why:
        status = f"off (the native allocation disagreed with torch: {why})"
        return status
    code = layout_of(native, torch.empty(0, device=devices[0]))[3]
    native.torch_allocator_configure((code,), torch._C._len_torch_dispatch_stack)
    status = (f"on for {device_type} (torch's C shim aoti_torch_empty_strided, wrapped by THPVariable_Wrap; "
              f"checked on {len(PROBE_LAYOUTS)} layouts x {len(_dtypes())} dtypes on {len(devices)} device(s))")
    return status
