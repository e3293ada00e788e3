"""Run by tests/test_launcher_parity.py in a subprocess: the installed Triton's own launcher code (3.6: the
C launcher it generates per signature; 3.7+: `launchKernel` in its `driver.c`) and swiftlaunch's core
launch the same arguments through a recording stand-in libcuda.so.1, on CPU. Prints one JSON document:
per argument case and per launch configuration, what each side handed the "GPU" or that it raised.

    python run_parity.py /path/to/libcuda.so.1
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import sys
import types
import warnings

FAKE = sys.argv[1]
# Loaded by path before anything else: every later dlopen("libcuda.so.1") (Triton's launcher, the
# core's driver) gets this library. torch then finds no usable CUDA driver and stays on CPU.
LIB = ctypes.CDLL(FAKE, mode=os.RTLD_NOW | ctypes.RTLD_GLOBAL)


class Record(ctypes.Structure):
    _fields_ = [
        ("launches", ctypes.c_int), ("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3),
        ("shared", ctypes.c_uint), ("stream", ctypes.c_uint64), ("function", ctypes.c_uint64),
        ("num_attrs", ctypes.c_uint), ("attr_ids", ctypes.c_int * 8), ("attr_values", (ctypes.c_ubyte * 16) * 8),
        ("param_count", ctypes.c_int), ("params", ctypes.c_uint64 * 64), ("func_attribute_calls", ctypes.c_int),
        ("func_attribute", ctypes.c_int), ("func_attribute_value", ctypes.c_int),
    ]


RECORD = Record.in_dll(LIB, "fake_record")

warnings.simplefilter("ignore")
import torch  # noqa: E402
import triton  # noqa: E402
from triton.backends.nvidia import driver as nvdriver  # noqa: E402

import swiftlaunch  # noqa: E402
from swiftlaunch import _loader, _runtime  # noqa: E402

assert swiftlaunch.native_available(), swiftlaunch.native_error()
native = _loader.native
assert native.driver_info()["library"] == os.path.realpath(FAKE), native.driver_info()
FAMILY = _runtime.triton_family(triton.__version__)
assert native.rules() == FAMILY, (native.rules(), FAMILY)

# One parameter of every scalar type, a pointer, and a constexpr the launchers drop.
SIGNATURE = ["i1", "i8", "i16", "i32", "constexpr", "i64", "u1", "u8", "u16", "u32", "u64",
             "fp16", "bf16", "fp32", "fp64", "*fp32"]
NAMES = [f"p{i}" for i in range(len(SIGNATURE))]
DEFAULTS = [128 if ty == "constexpr" else 0.0 if ty.startswith(("fp", "bf")) else 0 for ty in SIGNATURE]
KERNEL_PARAMS = sum(ty != "constexpr" for ty in SIGNATURE) + 2  # + global and profile scratch
FUNCTION, STREAM, GRID = 0xF00D, 0x5757, (3, 2, 5)

C_SIZES = {"int8_t": 1, "int16_t": 2, "int32_t": 4, "int64_t": 8, "uint8_t": 1, "uint16_t": 2, "uint32_t": 4,
           "uint64_t": 8, "CUdeviceptr": 8}


def write_sizes() -> dict:
    """How many bytes this Triton's launcher writes for each parameter type, read from its own code."""
    if FAMILY == "3.6":
        sizes = {}
        for ty in SIGNATURE:
            if ty == "constexpr":
                continue
            storage = nvdriver.FLOAT_STORAGE_TYPE.get(ty) or nvdriver.ty_to_cpp(ty)
            sizes[ty] = C_SIZES[storage]
        return sizes
    source = open(os.path.join(os.path.dirname(nvdriver.__file__), "driver.c")).read()
    table = source[source.index("Extractor extraction_map"):]
    table = table[:table.index("};")]
    sizes = {}
    for size_type, names in re.findall(r"\.size = sizeof\((\w+)\)[^}]*?\.name = (NULL|\{[^}]*\})", table):
        if names == "NULL":
            if size_type == "CUdeviceptr":
                sizes["*"] = C_SIZES[size_type]
            continue
        for name in re.findall(r'"(\w+)"', names):
            sizes[name] = C_SIZES.get(size_type, 0)
    return {ty: sizes["*"] if ty.startswith("*") else sizes[ty] for ty in SIGNATURE if ty != "constexpr"}


SIZES = write_sizes()


def triton_launcher(num_ctas=1, cooperative=False, pdl=False):
    src = types.SimpleNamespace(signature=dict(zip(NAMES, SIGNATURE)), constants={},
                                fn=types.SimpleNamespace(arg_names=NAMES))
    metadata = types.SimpleNamespace(
        num_ctas=num_ctas, global_scratch_size=0, global_scratch_align=1, profile_scratch_size=0,
        profile_scratch_align=1, launch_cooperative_grid=cooperative, launch_pdl=pdl, tensordesc_meta=None,
        instrumentation_mode="")
    return nvdriver.CudaLauncher(src, metadata)


if FAMILY != "3.6":  # 3.7+'s launcher is `driver.active.utils.launch` (driver.c, built against the stand-in)
    triton.runtime.driver.set_active(nvdriver.CudaDriver())


def snapshot():
    r = RECORD
    return {
        "launches": r.launches,
        "grid": list(r.grid), "block": list(r.block), "shared": r.shared, "stream": r.stream, "function": r.function,
        "attrs": [[r.attr_ids[i], bytes(r.attr_values[i]).hex()] for i in range(min(r.num_attrs, 8))],
        "num_attrs": r.num_attrs,
        "params": [r.params[i] for i in range(r.param_count)],
        "func_attribute": [r.func_attribute_calls, r.func_attribute, r.func_attribute_value],
    }


def run_triton(launcher, args, num_warps=4, num_ctas=1, shared=0, grid=GRID):
    LIB.fake_reset(KERNEL_PARAMS)
    error = None
    try:
        launcher(*grid, STREAM, FUNCTION, (num_warps, num_ctas, shared), None, None, None, *args)
    except Exception as caught:  # the exception type is what the comparison needs
        error = type(caught).__name__
    return {"error": error, **snapshot()}


def core_kernel():
    traits = tuple((ty == "constexpr", False, True, True, None) for ty in SIGNATURE)
    defaults = tuple((False, None) for _ in SIGNATURE)
    return native.Kernel(types.SimpleNamespace(), lambda *a: None, tuple(NAMES), traits, defaults, ())


def core_insert(kernel, token, num_warps=4, num_ctas=1, shared=0, cooperative=False, pdl=False):
    return kernel.insert(token, object(), (FUNCTION, num_warps, num_ctas, shared, cooperative, pdl, 0, 1,
                                           tuple(SIGNATURE)))


def run_core(kernel, token, args, grid=GRID):
    LIB.fake_reset(KERNEL_PARAMS)
    error = None
    try:
        native.raw_launch_loop(kernel, token, grid, tuple(args), STREAM, 0, 1)
    except (RuntimeError, TypeError) as caught:  # "stepAside(...)", "argument N not handled"
        error = str(caught)
    return {"error": error, **snapshot()}


INTS = [0, 1, 2, -1, 15, 16, 127, 128, 255, 256, 300, -128, -129, 32767, 32768, 65535, 65536, -32768, -32769,
        2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 7, -2**31, -2**31 - 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
        -2**63, -2**63 - 1, 2**100, -2**100, True, False]
FLOATS = [0.0, -0.0, 1.0, -2.5, 0.1, 65504.0, 65519.99, 65520.0, -65520.0, 1e300, -1e300, float("inf"),
          float("-inf"), float("nan"), -float("nan"), 2.0**-24, 2.0**-25, 1e-8, 1 + 2.0**-11, 3.4028235e38, 3.5e38,
          16777217.0]
POINTERS = [0, 16, 4096, 2**48 + 16, 2**64 - 1, -1, 2**64, True, False, None]
ODD = [None, 1.5, 0.0, "text", (1, 2)]


def values_for(ty):
    if ty.startswith("*"):
        return POINTERS + [1.5]
    if ty.startswith(("fp", "bf")):
        return FLOATS + [0, 1, -3, 2**53 + 1, 2**70, 2**1100, True, None, "text"]
    return INTS + ODD


def main():
    results = {"family": FAMILY, "version": triton.__version__, "sizes": SIZES, "cases": [], "configs": []}
    launcher = triton_launcher()
    kernel = core_kernel()
    token = b"\x01" * 8
    assert core_insert(kernel, token)
    for position, ty in enumerate(SIGNATURE):
        if ty == "constexpr":
            continue
        for value in values_for(ty):
            args = list(DEFAULTS)
            args[position] = value
            results["cases"].append({
                "type": ty, "position": position, "value": repr(value),
                "triton": run_triton(launcher, args), "core": run_core(kernel, token, args),
            })
    # An empty grid: both convert the arguments, neither launches.
    for value in (5, 300, -1):
        args = list(DEFAULTS)
        args[SIGNATURE.index("i8")] = value
        results["cases"].append({
            "type": "i8", "position": SIGNATURE.index("i8"), "value": f"{value!r} (grid 0)",
            "triton": run_triton(launcher, args, grid=(0, 1, 1)), "core": run_core(kernel, token, args, grid=(0, 1, 1)),
        })
    # Launch configurations: block, shared memory, cluster, cooperative, PDL and 3.8+'s oversized shared memory.
    configs = [(4, 1, 0, False, False), (8, 1, 1024, False, True), (1, 1, 0, True, False), (4, 2, 0, False, False),
               (4, 2, 4096, True, True), (4, 16, 0, False, False), (4, 1, 228 * 1024, False, False),
               (4, 1, 228 * 1024 + 1, False, False), (4, 1, 240 * 1024, False, True), (4, 2, 240 * 1024, True, False),
               (4, 2, 240 * 1024, True, True)]
    for index, (num_warps, num_ctas, shared, cooperative, pdl) in enumerate(configs):
        entry = {"config": [num_warps, num_ctas, shared, cooperative, pdl]}
        # Five attributes (3.8+ above 228 KiB with PDL, cooperative and a cluster) overflow Triton's
        # `launchAttr[4]`: Triton's result is undefined, so only the core's refusal is recorded.
        attributes = pdl + cooperative + 2 * (num_ctas != 1) + (FAMILY not in ("3.6", "3.7") and shared > 228 * 1024)
        config_token = bytes([index + 2]) * 8
        entry["inserted"] = core_insert(kernel, config_token, num_warps, num_ctas, shared, cooperative, pdl)
        entry["attributes"] = attributes
        if attributes <= 4:
            launcher = triton_launcher(num_ctas, cooperative, pdl)
            entry["triton"] = run_triton(launcher, DEFAULTS, num_warps, num_ctas, shared)
        if entry["inserted"]:
            entry["core"] = run_core(kernel, config_token, DEFAULTS)
        results["configs"].append(entry)
    print(json.dumps(results))


main()
