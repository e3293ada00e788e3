"""Turns on the native tensor reader (torch's C shim, read at a fixed handle offset) only after
checking it against torch's own accessors; otherwise the core reads tensors through those accessors.

The rules: torch 2.4 or newer (the shim's first release with every function the reader calls), the
handle found at exactly one offset in every probe tensor, and every field the reader serves equal to
what torch's accessors say, on CPU probes and, when CUDA is available, CUDA probes. Any doubt means
the accessor path for the whole process, and `stats()` / `info` say why.
"""

from __future__ import annotations

import os
import weakref

ENV = "SWIFTLAUNCH_TENSOR_READER"


def _torch_version() -> tuple[int, int]:
    import torch

    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int(minor)


def probe_tensors(device: str) -> list:
    """The tensors the handle offset and the fields are checked on: each way torch makes a tensor's
    Python object (fresh, a view, a Parameter, an op result, a non-leaf, a `.grad`, one revived
    through `_base`, one revived through a weakref while a view holds its impl)."""
    import torch

    fresh = torch.randn(4, 6, device=device)
    leaf = torch.randn(5, device=device, requires_grad=True)
    leaf.grad = torch.randn(5, device=device)
    probes = [
        fresh,
        fresh[1:, ::2],
        fresh.t(),
        torch.nn.Parameter(torch.randn(3, device=device)),
        fresh + 1,
        leaf * 2,
        leaf.grad,
        torch.empty(0, device=device),
        torch.tensor(3.0, device=device),
        fresh.view(torch.int32),
        torch.randn(2, 3, 4, 5, device=device).to(memory_format=torch.channels_last),
        fresh.expand(2, 4, 6),
    ]
    probes.append(fresh[2:]._base)
    holder = torch.randn(8, device=device)
    view = holder[1:]
    ref = weakref.ref(holder)
    del holder
    revived = ref()
    if revived is not None:
        probes += [revived, view]
    return probes


def _expected(tensor, codes):
    device_type = codes["cuda"] if tensor.is_cuda else codes["cpu"]
    device_index = tensor.get_device() if tensor.is_cuda else -1
    return (device_type, device_index, tensor.data_ptr(), tensor.dim(), tuple(tensor.shape),
            tuple(tensor.stride()), tensor.storage_offset())


def _mismatch(native, tensor, codes) -> str | None:
    read = native.read_tensor(tensor)
    got = (read[0], read[1], read[3], read[4], read[5], read[6], read[7])
    want = _expected(tensor, codes)
    if got != want:
        return f"read {got}, torch says {want} for a {tuple(tensor.shape)} {tensor.dtype} on {tensor.device}"
    return None


def configure_reader(native, dtypes, launch_device_type: str = "cuda"):
    """`(reader_config, status)`: the `reader` argument of `_native.configure` (None: use the accessor
    path) and a line saying which reader is in use and why. `launch_device_type` is "cuda", or "cpu"
    for the stand-in driver's tests."""
    import torch

    setting = os.environ.get(ENV, "").strip().lower()
    if setting == "python":
        return None, f"python accessors ({ENV}=python)"
    if setting not in ("", "native"):
        return None, f"python accessors ({ENV}={setting!r} is neither 'native' nor 'python')"
    if _torch_version() < (2, 4):
        return None, f"python accessors (torch {torch.__version__} is older than 2.4)"
    library = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    try:
        probes = [t for device in devices for t in probe_tensors(device)]
        offset, cuda_code, cpu_code = native.tensor_reader_probe(
            library, (torch.Tensor, torch.nn.Parameter), tuple((t, int(t._cdata)) for t in probes))
        codes = {"cuda": cuda_code, "cpu": cpu_code}
        for tensor in probes:
            why = _mismatch(native, tensor, codes)
            if why:
                return None, f"python accessors (the native reader disagreed with torch: {why})"
        dtype_codes = []
        seen = {}
        for dtype, _name in dtypes:
            code = -1
            for device in devices:
                try:  # not every dtype has kernels everywhere (uint1 on CUDA); empty() needs none
                    probe = torch.empty(2, dtype=dtype, device=device)
                except (RuntimeError, TypeError):
                    continue
                why = _mismatch(native, probe, codes)
                if why:
                    return None, f"python accessors (the native reader disagreed with torch: {why})"
                read_code = native.read_tensor(probe)[2]
                if code not in (-1, read_code) or seen.get(read_code, dtype) != dtype:
                    return None, f"python accessors (dtype code {read_code} is not one dtype's)"
                code = read_code
                seen[code] = dtype
            dtype_codes.append(code)
    except (RuntimeError, TypeError, ValueError, OSError, AttributeError) as error:
        return None, f"python accessors (the native reader could not be set up: {error})"
    use_stream_shim, stream_status = _stream_shim(native) if launch_device_type == "cuda" else (False, "")
    status = (f"native (torch's C shim, handle at +{offset}, checked on {len(probes)} probes and "
              f"{len(dtypes)} dtypes){stream_status}")
    return (codes[launch_device_type], tuple(dtype_codes), use_stream_shim), status


def _stream_shim(native):
    """Whether the core may read torch's current stream through the CUDA shim, and a note for the
    status line: only when it answers what `torch._C._cuda_getCurrentRawStream` answers on every
    device, on the default stream and inside a `torch.cuda.stream` block."""
    import torch

    if not torch.cuda.is_available():
        return False, ""
    library = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cuda.so")
    if not native.stream_shim_probe(library):
        return False, "; stream: torch._C._cuda_getCurrentRawStream (no CUDA shim)"
    query = torch._C._cuda_getCurrentRawStream
    for device in range(torch.cuda.device_count()):
        if native.current_stream(device) != query(device):
            return False, f"; stream: torch._C._cuda_getCurrentRawStream (the shim disagreed on device {device})"
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        device = torch.cuda.current_device()
        if not native.current_stream(device) == query(device) == side.cuda_stream:
            return False, "; stream: torch._C._cuda_getCurrentRawStream (the shim disagreed in a stream block)"
    return True, "; stream: torch's C shim"
