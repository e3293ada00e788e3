"""The core's argument conversion and launch configuration against the installed Triton's own launcher
code, on CPU: both launch through a recording stand-in libcuda.so.1 (tests/launcher_parity), one
parameter of every type at a time, over edge values (range limits, negatives for unsigned types, fp16
overflow, NaN, bools, None, wrong types), and over launch configurations (clusters, cooperative, PDL,
3.8+'s oversized shared memory).

The rule: where Triton raises (before or after launching), the core steps aside, so Triton raises for
the user; where Triton launches without error, the core launches with the same grid, block, shared
memory, stream, function, launch attributes and, for every parameter, the bytes Triton's launcher
wrote (their count read from that launcher's own code: 3.6's `ty_to_cpp` / `FLOAT_STORAGE_TYPE`, 3.7+'s
`extraction_map`).

Triton's launcher is built with the C compiler, as Triton builds it on a GPU machine (3.6: the launcher
generated for the signature; 3.7+: `driver.c`); without one the test is skipped and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PARITY = os.path.join(HERE, "launcher_parity")


@pytest.fixture(scope="module")
def parity(native, tmp_path_factory):
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build Triton's launcher and the stand-in libcuda with")
    fake_dir = tmp_path_factory.mktemp("recording_libcuda")
    fake = str(fake_dir / "libcuda.so.1")
    subprocess.run([compiler, "-O1", "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", fake,
                    os.path.join(PARITY, "recording_libcuda.c")], check=True)
    env = {key: value for key, value in os.environ.items() if key != "LD_PRELOAD"}
    env.update({
        "TRITON_LIBCUDA_PATH": str(fake_dir),  # Triton links its launcher against the stand-in
        "TRITON_CACHE_DIR": str(tmp_path_factory.mktemp("triton_cache")),
        "SWIFTLAUNCH_ALLOW_UNTESTED": "1",  # CPU-checked releases: the core must be on to be compared
        "PYTHONPATH": os.pathsep.join([p for p in sys.path if p]),
    })
    run = subprocess.run([sys.executable, os.path.join(PARITY, "run_parity.py"), fake], capture_output=True,
                         text=True, env=env, timeout=600, cwd=os.path.dirname(HERE))
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def kernel_types(result):
    """The non-constexpr parameter types in kernel-parameter order, then the two scratch pointers."""
    signature = ["i1", "i8", "i16", "i32", "i64", "u1", "u8", "u16", "u32", "u64", "fp16", "bf16", "fp32", "fp64",
                 "*fp32"]
    return [result["sizes"][ty] for ty in signature] + [8, 8]


def masked(params, sizes):
    return [value & ((1 << (8 * size)) - 1) for value, size in zip(params, sizes)]


CONFIG_FIELDS = ("grid", "block", "shared", "stream", "function", "num_attrs", "attrs", "func_attribute")


def test_rules_are_the_installed_releases(parity):
    import triton

    from swiftlaunch import _runtime

    assert parity["version"] == triton.__version__
    assert parity["family"] == _runtime.triton_family(triton.__version__)


def unread_integer(case) -> bool:
    """An int the core does not read (outside [-2**63, 2**64)). For parameters Triton specializes its
    binder raises OverflowError before any launcher sees it; parameters annotated u1, fp* or bf* skip
    specialization, and there the core steps aside where Triton would launch: slower, never wrong."""
    try:
        value = int(case["value"])
    except ValueError:
        return False
    return not -(2**63) <= value < 2**64 and "not handled" in (case["core"]["error"] or "")


def test_conversions_match_tritons_launcher(parity):
    sizes = kernel_types(parity)
    mismatches, launched, stepped_aside, conservative = [], 0, 0, 0
    for case in parity["cases"]:
        triton_side, core = case["triton"], case["core"]
        label = f"{case['type']} = {case['value']}"
        if triton_side["error"] is not None:
            # Triton raises (3.6's fp16 overflow and 3.7+'s out-of-range int pointers after launching):
            # the core must not launch, so that the call goes to Triton and raises there.
            if core["error"] is None or core["launches"]:
                mismatches.append(f"{label}: Triton raised {triton_side['error']}, the core launched {core}")
            stepped_aside += 1
            continue
        if core["error"] is not None:
            if unread_integer(case):
                conservative += 1
            else:
                mismatches.append(f"{label}: Triton launched, the core stepped aside ({core['error']})")
            continue
        if masked(triton_side["params"], sizes) != masked(core["params"], sizes):
            mismatches.append(f"{label}: parameters {masked(triton_side['params'], sizes)} (Triton) != "
                              f"{masked(core['params'], sizes)} (core)")
        for field in CONFIG_FIELDS + ("launches",):
            if triton_side[field] != core[field]:
                mismatches.append(f"{label}: {field} {triton_side[field]} (Triton) != {core[field]} (core)")
        launched += triton_side["launches"]
    print(f"triton {parity['version']}: {len(parity['cases'])} cases, {launched} launched alike, "
          f"{stepped_aside} raised by Triton and stepped aside by the core, {conservative} ints beyond 64 bits "
          f"stepped aside where Triton launched")
    assert not mismatches, "\n".join(mismatches[:40])
    assert launched > 300 and stepped_aside > 50


def test_release_specific_conversions_were_exercised(parity):
    """The cases this release's rules are about really went through both launchers."""
    outcome = {(case["type"], case["value"]): case["triton"]["error"] is None for case in parity["cases"]}
    if parity["family"] == "3.6":
        assert not outcome[("i8", "300")] and not outcome[("i8", "-1")]  # "b": 0...255
        assert outcome[("u8", "-1")] and outcome[("u64", "-1")]  # masked
    else:
        assert outcome[("i8", "300")] and outcome[("i8", "-1")]  # truncated
        assert not outcome[("u8", "-1")] and not outcome[("u64", "-1")] and not outcome[("u1", "-1")]
        assert not outcome[("i32", str(2**63))]  # outside a C long
    assert not outcome[("fp16", "65520.0")]


def test_launch_configurations_match(parity):
    mismatches = []
    for entry in parity["configs"]:
        num_warps, num_ctas, shared, cooperative, pdl = entry["config"]
        if entry["attributes"] > 4:
            # Triton would write a fifth attribute past `launchAttr[4]`: the core never caches it.
            assert not entry["inserted"], entry
            continue
        assert entry["inserted"], entry
        triton_side, core = entry["triton"], entry["core"]
        assert triton_side["error"] is None and core["error"] is None, entry
        for field in CONFIG_FIELDS + ("launches",):
            if triton_side[field] != core[field]:
                mismatches.append(f"{entry['config']}: {field} {triton_side[field]} (Triton) != {core[field]} (core)")
    assert not mismatches, "\n".join(mismatches)


def test_oversized_shared_memory_attribute(parity):
    oversized = [entry for entry in parity["configs"] if entry["config"][2] > 228 * 1024 and "triton" in entry]
    assert oversized
    newer = parity["family"] not in ("3.6", "3.7")
    for entry in oversized:
        ids = [attr[0] for attr in entry["triton"]["attrs"]]
        assert (ids[:1] == [18]) == newer, entry  # CU_LAUNCH_ATTRIBUTE_SHARED_MEMORY_MODE, first
        if newer:
            assert entry["triton"]["attrs"][0][1].startswith("03000000")  # ALLOW_OVERSIZED_SHARED_MEMORY
        assert entry["core"]["attrs"] == entry["triton"]["attrs"]
    refused = [entry for entry in parity["configs"] if entry["attributes"] > 4]
    assert bool(refused) == newer
