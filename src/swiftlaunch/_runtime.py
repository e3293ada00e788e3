"""Hands the Swift core the torch and Triton objects its launch path reads (once, lazily)."""

from __future__ import annotations

import threading
import warnings

from . import _loader

_lock = threading.Lock()
_configured = False


def triton_dtype_names():
    """Every torch dtype Triton has a name for, as Triton's own specialization names it."""
    import torch
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import BaseBackend

    pairs = []
    seen = set()
    # The core finds a dtype by a linear scan of this table: the common ones go first.
    common = ["float32", "float16", "bfloat16", "int32", "int64", "uint8", "int8", "bool", "float64"]
    for name in common + sorted(set(dir(torch)) - set(common)):
        dtype = getattr(torch, name)
        if not isinstance(dtype, torch.dtype) or dtype in seen:
            continue
        seen.add(dtype)
        try:
            with warnings.catch_warnings():  # torch warns that complex32 is experimental
                warnings.simplefilter("ignore")
                probe = torch.empty(0, dtype=dtype)
            kind = native_specialize_impl(BaseBackend, probe, False, True, True)[0]
        except Exception:  # dtypes Triton has no name for (complex, quantized, sub-byte)
            continue
        pairs.append((dtype, kind[1:]))
    return tuple(pairs)


def tensor_access():
    """`(dtype, data_ptr, get_device)` of `torch._C.TensorBase`, which the core calls directly on
    exact `torch.Tensor` / `Parameter` arguments, and an empty tensor to find their C functions with;
    None (the core then steps aside on every tensor) if either class resolves one of those names to
    anything else."""
    import inspect

    import torch

    names = ("dtype", "data_ptr", "get_device")
    found = tuple(torch._C.TensorBase.__dict__.get(name) for name in names)
    for cls in (torch.Tensor, torch.nn.Parameter):
        for name, accessor in zip(names, found):
            if accessor is None or inspect.getattr_static(cls, name) is not accessor:
                return None
    return (*found, torch.empty(0))


def ensure_configured() -> bool:
    """Configures the core on first use; False when there is no core to configure."""
    global _configured
    native = _loader.native
    if native is None:
        return False
    if _configured:
        return True
    with _lock:
        if _configured:
            return True
        import torch
        from triton import knobs
        from triton.runtime import _allocation

        cuda = torch.cuda.is_available()
        native.configure(
            (torch.Tensor, torch.nn.Parameter),
            triton_dtype_names(),
            torch._C._cuda_getCurrentRawStream if cuda else None,
            knobs.runtime,
            knobs.compilation,
            knobs.HookChain,
            _allocation._allocator,
            _allocation.NullAllocator,
            tensor_access(),
        )
        _configured = True
    return True
