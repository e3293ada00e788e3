"""Hands the Swift core the torch and Triton objects its launch path reads (once, lazily)."""

from __future__ import annotations

import hashlib
import inspect
import os
import threading
import warnings

from . import _loader, _torch_reader

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

    import torch

    names = ("dtype", "data_ptr", "get_device")
    found = tuple(torch._C.TensorBase.__dict__.get(name) for name in names)
    for cls in (torch.Tensor, torch.nn.Parameter):
        for name, accessor in zip(names, found):
            if accessor is None or inspect.getattr_static(cls, name) is not accessor:
                return None
    return (*found, torch.empty(0))


# Triton release families whose launch path the core reproduces (its `TritonRules`), split by how
# they were checked. GPU-verified ones ran the whole GPU suite, the randomized differential against
# Triton included, through the core on a GPU (README and docs/results: which card, which release) and
# run natively by default. CPU-checked ones had their rules read from the wheels and their CPU suites
# (specialization, keys, binding, the gate, the readers, and the conversions and launch attributes
# against Triton's own launcher code on a stand-in driver) run in CI, but no kernel of theirs has been
# launched on a GPU through the core yet: they run natively only with SWIFTLAUNCH_ALLOW_UNTESTED=1.
TESTED_TRITON = ("3.6", "3.7", "3.9")
CPU_CHECKED_TRITON = ("3.8",)
ALLOW_UNTESTED = "SWIFTLAUNCH_ALLOW_UNTESTED"

# Why every call passes through to Triton/Helion ("" while the core is in use), which tensor reader
# the core uses, and which Triton rules it follows; all set by `ensure_configured`.
pass_through_reason = ""
reader_status = "not configured yet"
rules_family = ""
constexpr_status = "not configured yet"

# sha256 of `inspect.getsource(...)` of what the native comparison of captured `tl.constexpr` globals
# mirrors (`bool(a.value != b.value)`), in triton 3.6.0–3.9.0; `_unwrap_if_constexpr` changed its tuple
# branches in 3.7, not what it does with a constexpr.
CONSTEXPR_SOURCES = {
    "constexpr.__ne__": {"2b93b91f856b1bbe9d6c975e8e298f0e6997c3ec60b9d8ed81bd7e9ff9f9552a"},
    "constexpr.__bool__": {"c4cb5cfc992ecdf8a45de86666ce598e165f5b06ca6037380c2bbd3d2cbd2ff7"},
    "constexpr.__init__": {"a3fa287a473b8bf1253d3767901d7873111eb76f3848bca4a87f00335d3b25a4"},
    "_unwrap_if_constexpr": {"cfc55ab11e03a52fe5ba05cdb274cefa934a64dbfd934fdf10191642b86f5ba9",
                             "54db2f51b2d3d031c03d948f6bc32155ddb1ad84dd5d4e0c4298bb861d71e706"},
}


def triton_family(version: str) -> str:
    """ "3.7" for "3.7.1", "3.7.0+git1234" or "3.7.0rc1"; "" when the version is not major.minor[...]."""
    parts = version.split(".")
    if len(parts) < 2 or not parts[0].isdigit():
        return ""
    minor = ""
    for char in parts[1]:
        if not char.isdigit():
            break
        minor += char
    return f"{parts[0]}.{minor}" if minor else ""


def _versions(families) -> str:
    """ "3.6.x, 3.7.x" in release order."""
    ordered = sorted(families, key=lambda family: tuple(int(part) for part in family.split(".")))
    return ", ".join(family + ".x" for family in ordered)


def triton_gate() -> str:
    """Why this Triton's calls must all go to Triton unchanged, or "" when the core may take them.
    The version check comes first; feature checks back it up for the names the core relies on (the
    per-kernel ones, `packed_metadata` among them, are checked when a kernel is cached)."""
    import triton

    version = triton.__version__
    family = triton_family(version)
    override = os.environ.get(ALLOW_UNTESTED, "") not in ("", "0")
    if family in CPU_CHECKED_TRITON:
        if not override:
            return (f"triton {version} is checked on CPU only, not yet on a GPU (GPU-verified: "
                    f"{_versions(TESTED_TRITON)}; {ALLOW_UNTESTED}=1 runs it natively)")
    elif family not in TESTED_TRITON:
        if not override:
            return (f"triton {version} is not a tested version (tested: {_versions(TESTED_TRITON)}; "
                    f"CPU-checked: {_versions(CPU_CHECKED_TRITON)}; {ALLOW_UNTESTED}=1 overrides)")
        if family not in TESTED_TRITON + CPU_CHECKED_TRITON:
            return (f"swiftlaunch has no launch rules for triton {version} (it has rules for "
                    f"{_versions(TESTED_TRITON + CPU_CHECKED_TRITON)})")
    from triton import knobs
    from triton.runtime import _allocation
    from triton.runtime.jit import JITFunction

    try:
        from triton._C.libtriton import native_specialize_impl  # noqa: F401
    except ImportError:
        return f"triton {version} has no native_specialize_impl"
    for owner, names in ((knobs.runtime, ("debug", "launch_enter_hook", "launch_exit_hook",
                                          "add_stages_inspection_hook")),
                         (knobs.compilation, ("instrumentation_mode",)),
                         (knobs, ("HookChain",)), (_allocation, ("_allocator", "NullAllocator")),
                         (JITFunction, ("run",))):
        missing = [name for name in names if not hasattr(owner, name)]
        if missing:
            return f"triton {version} lacks {', '.join(missing)}"
    # The core reads these from instance `__dict__`s, falling back to class values read once: right
    # only while the class defines no data descriptor of that name.
    for owner, names in ((JITFunction, ("pre_run_hooks", "debug", "used_global_vals")),
                         (type(knobs.runtime), ("debug", "launch_enter_hook", "launch_exit_hook",
                                                "add_stages_inspection_hook")),
                         (type(knobs.compilation), ("instrumentation_mode",))):
        described = [name for name in names if _is_data_descriptor(owner, name)]
        if described:
            return f"triton {version} reads {', '.join(described)} through a descriptor"
    if family == "3.9":
        why = _fpsan_knob_problem(knobs)
        if why:
            return f"triton {version}: {why}"
    return ""


FPSAN_ENV = "TRITON_FPSAN_HOMOMORPHIC_CASTS"


def _fpsan_knob_problem(knobs) -> str:
    """3.9 keys kernels on `knobs.compilation.fpsan_homomorphic_casts`, an `env_bool` descriptor the
    core reads the way `env_base.__get__` does (the instance `__dict__` entry, else the environment):
    right only while it is Triton's own `env_bool` for that variable, with nothing overridden."""
    descriptor = type(knobs.compilation).__dict__.get("fpsan_homomorphic_casts")
    env_base, env_bool = getattr(knobs, "env_base", None), getattr(knobs, "env_bool", None)
    if descriptor is None or env_bool is None or env_base is None:
        return "lacks fpsan_homomorphic_casts"
    kind = type(descriptor)
    if (kind is not env_bool or getattr(descriptor, "key", None) != FPSAN_ENV
            or getattr(descriptor, "name", None) != "fpsan_homomorphic_casts"
            or kind.__get__ is not env_base.__get__ or kind.transform is not env_base.transform):
        return "fpsan_homomorphic_casts is not the env_bool knob the core reads"
    return ""


def _is_data_descriptor(owner: type, name: str) -> bool:
    try:
        attribute = inspect.getattr_static(owner, name)
    except AttributeError:
        return False
    return hasattr(type(attribute), "__set__") or hasattr(type(attribute), "__delete__")


def _configure(native) -> None:
    global reader_status, rules_family
    import torch
    import triton
    from triton import knobs
    from triton.runtime import _allocation

    dtypes = triton_dtype_names()
    reader, reader_status = _torch_reader.configure_reader(native, dtypes)
    native.configure(
        (torch.Tensor, torch.nn.Parameter),
        dtypes,
        torch._C._cuda_getCurrentRawStream if torch.cuda.is_available() else None,
        knobs.runtime,
        knobs.compilation,
        knobs.HookChain,
        _allocation._allocator,
        _allocation.NullAllocator,
        tensor_access(),
        reader,
        tuple(int(part) for part in triton_family(triton.__version__).split(".")),
    )
    rules_family = native.rules()
    _configure_constexpr(native)


def _constexpr_problem(core) -> str:
    """Why captured constexpr globals cannot be compared natively, or "" when they can."""
    cls = core.constexpr
    for name, function in (("constexpr.__ne__", cls.__dict__.get("__ne__")),
                           ("constexpr.__bool__", cls.__dict__.get("__bool__")),
                           ("constexpr.__init__", cls.__dict__.get("__init__")),
                           ("_unwrap_if_constexpr", getattr(core, "_unwrap_if_constexpr", None))):
        if function is None:
            return f"no {name}"
        if hashlib.sha256(inspect.getsource(function).encode()).hexdigest() not in CONSTEXPR_SOURCES[name]:
            return f"{name} is not a version checked"
    # `self.value` must be the instance dict's entry: no class in the MRO may define `value` (a
    # descriptor would intercept it) or customise attribute lookup.
    if type(cls) is not type or cls.__getattribute__ is not object.__getattribute__ or cls.__dictoffset__ == 0:
        return "constexpr customises its attributes"
    if any("value" in vars(owner) for owner in cls.__mro__):
        return "constexpr has a class attribute value"
    return ""


def _constexpr_probes(constexpr) -> list:
    nan = float("nan")
    plain = [0, 1, 2**70, -1, True, False, 1.0, 0.5, nan, -0.0, "a", "b", "", None]
    pairs = [(constexpr(a), constexpr(b)) for a in plain for b in plain]
    same = constexpr(nan)
    pairs += [(same, same), (constexpr(3), 3), (3, constexpr(3)), (constexpr((1, 2)), constexpr((1, 2)))]
    return pairs


def _configure_constexpr(native) -> None:
    """The native comparison of captured `tl.constexpr` globals (Triton's per-launch `used_global_vals`
    check), on only when constexpr's code is a version checked and the native answer matches
    Python's `bool(a != b)` on every probe; otherwise every global is compared through Python."""
    global constexpr_status
    from triton.language import core

    native.constexpr_compare_configure(None)
    problem = _constexpr_problem(core)
    if not problem:
        native.constexpr_compare_configure(core.constexpr)
        probes = _constexpr_probes(core.constexpr)
        for current, recorded in probes:
            differs, _ = native.global_differs(current, recorded)
            if differs is not bool(current != recorded):
                problem = f"probe {current!r} != {recorded!r} answered {differs}"
                break
    if problem:
        native.constexpr_compare_configure(None)
        constexpr_status = f"Python's != ({problem})"
    else:
        constexpr_status = f"native for constexprs of plain scalars (checked on {len(probes)} probes)"


def ensure_configured() -> bool:
    """Configures the core on first use; False when every call must go to Triton/Helion unchanged
    (no core, an untested Triton, or anything unexpected while configuring), with the reason in
    `pass_through_reason` and one warning."""
    global _configured, pass_through_reason
    native = _loader.native
    if native is None:
        return False
    if _configured:
        return not pass_through_reason
    with _lock:
        if _configured:
            return not pass_through_reason
        try:
            pass_through_reason = triton_gate()
            if not pass_through_reason:
                _configure(native)
        except (ImportError, AttributeError, TypeError, ValueError, RuntimeError) as error:
            pass_through_reason = f"configuring the core failed: {type(error).__name__}: {error}"
        if pass_through_reason:
            warnings.warn(f"swiftlaunch: {pass_through_reason}; kernels launch through Triton/Helion unchanged.",
                          RuntimeWarning, stacklevel=3)
        _configured = True
    return not pass_through_reason
