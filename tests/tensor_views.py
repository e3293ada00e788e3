"""Every kind of tensor object the native reader must read exactly as torch's accessors do (the
torch-tensor-reader note's list), made on one device. Shared by the CPU test and the GPU parity test."""

import warnings

import torch


def view_kinds(device: str):
    """`(name, tensor)` pairs: views of each kind, odd shapes, autograd objects, round trips and
    objects whose storage was swapped behind them."""
    base = torch.arange(4 * 6 * 5, dtype=torch.float32, device=device).reshape(4, 6, 5)
    leaf = torch.randn(7, device=device, requires_grad=True)
    leaf.grad = torch.randn(7, device=device)
    rebound = torch.randn(3, device=device)
    rebound.data = torch.randn(2, 5, dtype=torch.float64, device=device)
    swapped_a, swapped_b = torch.randn(4, device=device), torch.arange(4, dtype=torch.int32, device=device).reshape(2, 2)
    torch.utils.swap_tensors(swapped_a, swapped_b)
    resized = torch.randn(4, device=device)
    resized.resize_(3, 3)
    set_target = torch.empty(0, device=device)
    set_target.set_(base.untyped_storage(), 8, (2, 3), (3, 1))
    with torch.inference_mode():
        inference = torch.randn(5, device=device)
    param = torch.nn.Parameter(torch.randn(6, 4, device=device))
    kinds = [
        ("fresh", base),
        ("slice", base[1:3]),
        ("step slice", base[:, ::2, 1::3]),
        ("transpose", base.transpose(0, 2)),
        ("permute", base.permute(2, 0, 1)),
        ("expand", torch.randn(1, 5, device=device).expand(4, 5)),
        ("as_strided", base.as_strided((3, 3), (7, 2), 5)),
        ("diagonal", base[0].diagonal()),
        ("dtype view", base.view(torch.int32)),
        ("byte view", base[1].view(torch.uint8)),
        ("real", torch.randn(4, dtype=torch.complex64, device=device).real),
        ("imag", torch.randn(4, dtype=torch.complex64, device=device).imag),
        ("channels_last", torch.randn(2, 3, 4, 5, device=device).to(memory_format=torch.channels_last)),
        ("0-dim", torch.tensor(2.5, device=device)),
        ("empty", torch.empty(0, 3, device=device)),
        ("8-dim", torch.randn(*([2] * 8), device=device)),
        ("leaf requires_grad", leaf),
        ("non-leaf", leaf * 3),
        (".grad", leaf.grad),
        ("Parameter", param),
        ("Parameter view", param[1:]),
        ("after x.data = y", rebound),
        ("after swap_tensors", swapped_a),
        ("after resize_", resized),
        ("after set_", set_target),
        ("inference mode", inference),
        ("dlpack round trip", torch.from_dlpack(base[2])),
    ]
    if device == "cpu":
        kinds.append(("numpy round trip", torch.from_numpy(base[1].numpy())))
    if hasattr(torch, "_lazy_clone"):
        kinds.append(("lazy clone", torch._lazy_clone(base)))
    return kinds


def dtype_probes(device: str):
    """One small tensor of every dtype torch has (float8, unsigned, complex, bool included)."""
    probes = []
    for name in sorted(dir(torch)):
        dtype = getattr(torch, name)
        if not isinstance(dtype, torch.dtype):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                probes.append((str(dtype), torch.empty(3, dtype=dtype, device=device)[1:]))
        except (RuntimeError, TypeError):  # dtypes torch cannot allocate here (quantized, sub-byte)
            continue
    return probes


def torch_fields(tensor):
    """What torch's own accessors say, in `_native.read_tensor`'s order (dtype code left out)."""
    device_index = tensor.get_device() if tensor.is_cuda else -1
    return (device_index, tensor.data_ptr(), tensor.dim(), tuple(tensor.shape), tuple(tensor.stride()),
            tensor.storage_offset())


def native_fields(read):
    device_type, device_index, _code, data_ptr, dim, sizes, strides, offset = read
    return (device_index, data_ptr, dim, sizes, strides, offset)
