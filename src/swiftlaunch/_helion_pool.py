"""The output pool's configure-time validation (see `Sources/SwiftLaunchNative/OutputPool.swift`).

The pool reads a tensor's TensorImpl and StorageImpl reference counts directly (~1.5 ns each, where
torch's Python accessors cost 50 – 430 ns). Where those counts sit in memory is not guessed: the
offset of the StorageImpl pointer is found by matching torch's own `x.untyped_storage()._cdata` in
every probe tensor, and the counts read through it must equal `x._use_count()` and
`torch._C._storage_Use_Count(...)` on fresh tensors, views, `detach()`es and DLPack capsules, moving
as those holders come and go. Any disagreement turns the pool off for the process, with the reason.
"""

from __future__ import annotations

import weakref

ENV = "SWIFTLAUNCH_OUTPUT_POOL"


def _devices():
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return devices


def _storage_offset(native) -> int | str:
    import torch

    found = None
    for device in _devices():
        # Each probe is used once: asking for its storage object pins its storage count (torch 2.10+).
        for probe in (torch.empty(16, device=device), torch.empty(3, 5, device=device)[1:],
                      torch.nn.Parameter(torch.empty(4, device=device)), torch.ones(8, device=device).add(1)):
            offsets = set(native.helion_pool_probe(probe)[0])
            found = offsets if found is None else found & offsets
    if not found or len(found) != 1:
        return f"the storage pointer is not at exactly one offset of the TensorImpl (found {sorted(found or ())})"
    return found.pop()


def _counts_agree(native) -> str:
    """"" when the counts read through the candidate layout equal torch's and move as they should."""
    import torch
    import torch.utils.dlpack

    def read(tensor):
        counts = native.helion_pool_counts(tensor)
        if counts is None:
            raise AssertionError("no storage")
        strong, weak, storage_strong, storage_weak, address = counts
        if strong != tensor._use_count() or storage_strong != torch._C._storage_Use_Count(address):
            raise AssertionError(f"counts {counts[:4]} differ from torch's ({tensor._use_count()}, "
                                 f"{torch._C._storage_Use_Count(address)})")
        return strong, weak, storage_strong, storage_weak

    try:
        for device in _devices():
            tensor = torch.empty(8, device=device)
            if read(tensor) != (1, 1, 1, 1):
                return f"a fresh {device} tensor reads {read(tensor)}"
            view = tensor[1:]
            if read(tensor)[0] != 2 or read(tensor)[2] != 2:
                return f"a view of a {device} tensor reads {read(tensor)}"
            detached = tensor.detach()
            if read(tensor)[2] != 3:
                return f"a detach() of a {device} tensor reads {read(tensor)}"
            del view, detached
            if read(tensor) != (1, 1, 1, 1):
                return f"a {device} tensor reads {read(tensor)} after its view and detach() went"
            capsule = torch.utils.dlpack.to_dlpack(tensor)
            with_capsule = read(tensor)
            if with_capsule == (1, 1, 1, 1):
                return f"a DLPack capsule of a {device} tensor is invisible to the counts"
            del capsule
            if read(tensor) != (1, 1, 1, 1):
                return f"a {device} tensor reads {read(tensor)} after its DLPack capsule went"
    except AssertionError as error:
        return str(error)
    return ""


def validate_layout(native) -> str:
    """Finds and checks where the counts are, leaving the candidate layout set; "" when it holds."""
    try:
        offset = _storage_offset(native)
        if isinstance(offset, str):
            return offset
        problems = []
        for combined in (True, False):
            native.helion_pool_layout(offset, combined)
            problem = _counts_agree(native)
            if not problem:
                return ""
            problems.append(f"{'one word' if combined else 'two words'}: {problem}")
        return "reference counts not as validated (" + "; ".join(problems) + ")"
    except Exception as error:  # noqa: BLE001 -- any surprise means no pool, with the reason
        return f"validation failed ({type(error).__name__}: {error})"


def configure(native) -> str:
    """Turns the pool on; "" on success, else why it stays off."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device"
    for name in ("_cuda_isCurrentStreamCapturing", "is_inference_mode_enabled", "_len_torch_dispatch_stack"):
        if not callable(getattr(torch._C, name, None)):
            return f"torch._C.{name} is missing"
    problem = validate_layout(native)
    if problem:
        return problem
    native.helion_pool_configure(weakref.getweakrefcount, torch._C._cuda_isCurrentStreamCapturing,
                                 torch._C.is_inference_mode_enabled, torch._C._len_torch_dispatch_stack)
    configure_capture_query(native)
    return ""


# How the pool learns whether a CUDA graph is capturing (for `swiftlaunch.helion.dispatch_stats()`).
capture_query = "off"


def configure_capture_query(native) -> None:
    """The pool asks the driver (`cuStreamIsCapturing` on torch's current stream, ~20 ns) instead of
    `torch._C._cuda_isCurrentStreamCapturing` (~300 ns on an H200's host) only when the two agree
    outside a capture and inside one, on every device; otherwise it keeps torch's."""
    global capture_query
    native.helion_pool_driver_capture(False)
    problem = _driver_capture_problem(native)
    if problem:
        capture_query = f"torch._C._cuda_isCurrentStreamCapturing ({problem})"
        return
    native.helion_pool_driver_capture(True)
    capture_query = "the driver's cuStreamIsCapturing (agrees with torch outside and inside a capture)"


def _driver_capture_problem(native) -> str:
    import torch

    def both():
        return native.current_stream_capturing(), torch._C._cuda_isCurrentStreamCapturing()

    try:
        current = torch.cuda.current_device()
        for device in range(torch.cuda.device_count()):
            with torch.cuda.device(device):
                if both() != (False, False):
                    return f"cuda:{device} outside a capture: driver, torch = {both()}"
                # A capture on a side stream, as torch.cuda.graph makes it, without its
                # synchronize / gc / empty_cache.
                stream, graph = torch.cuda.Stream(), torch.cuda.CUDAGraph()
                scratch = torch.zeros(1, device=f"cuda:{device}")
                with torch.cuda.stream(stream):
                    graph.capture_begin()
                    try:
                        scratch.add_(1)
                        inside = both()
                    finally:
                        graph.capture_end()
                del graph
                if inside != (True, True):
                    return f"cuda:{device} inside a capture: driver, torch = {inside}"
        if torch.cuda.current_device() != current:
            return "the current device moved"
    except Exception as error:  # noqa: BLE001 -- any surprise keeps torch's query, with the reason
        return f"{type(error).__name__}: {error}"
    return ""
