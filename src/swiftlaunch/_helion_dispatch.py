"""Every Helion kernel call through one native dispatch: the gate, the `Kernel.__call__` shim, and
the miss path that learns entries from Helion's own prepared calls.

`install()` replaces `helion.runtime.kernel.Kernel.__call__` with `_shim`, plain Python that Dynamo
traces like Helion's own method. While compiling, or with keyword arguments, the shim calls Helion's
original `__call__` unchanged. Otherwise it makes one native call, `_native.helion_dispatch(kernel,
args)`, which either runs the host wrapper Helion's guard would pick (passing swiftlaunch's launcher
as `_launcher=`) or hands the call back; a handed-back call runs through Helion's original `__call__`
and then `_learn` asks Helion's own prepared call whether it accepts those arguments before the native
table learns anything from it. CPython itself does not run the shim's frame: `Kernel`'s call slot is
pointed at a native function doing the shim's steps (HelionCallSlot.swift), while `Kernel.__call__`
stays the shim for Dynamo and every attribute lookup (`SWIFTLAUNCH_HELION_CALL_SLOT=0` keeps the frame).

The gate refuses (one warning, nothing patched, the reason counted in `stats()["fallbacks"]`) a
Helion version other than the tested ones, a source change in any Helion function whose behaviour
the dispatch mirrors or relies on (sha256 of `inspect.getsource`, recorded from the tested version),
and attribute layouts the native side reads directly.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import os
import threading
import types
import warnings

from . import _loader, _runtime, _triton

TESTED_HELION = ("1.5.0",)

# sha256 of `inspect.getsource(...)` in helion 1.5.0, for each function whose behaviour the native
# dispatch mirrors (the prepared-call guard and its matching, the generations, the structural-policy
# check, the default launcher, ConstExpr's value) or relies on (when Helion publishes a prepared call,
# the dispatch cache that maps the same arguments to the same bound kernel, the only writer of
# `BoundKernel._run`, the keyword path left to Helion).
MIRRORED_SOURCES = {
    "Kernel.__init__": "f1291138bd96a5f5fdf0fa84b286ad5a2f23115a5e6503bdae1a3d863208397d",
    "Kernel.__call__": "8810cd0dbde98af028f4f07c040d3df5ebff5dd4b9e54518246aa198f4be7542",
    "Kernel.reset": "640e47c80e8c517d08efebdad417d9f5a310341239e4cf9d60fea90584c39159",
    "Kernel.normalize_args": "d81c0461a18f3f3ded1eb42d1b057f2397cb999a9e16a017c38978c4a9ac72c1",
    "Kernel._validate_structural_policy": "5f5c86646876e6cb841e5c6ba0c45339cc1f05ffbb42d8e7faa0ad8f6f7e76f2",
    "Kernel.cute_structural_policy": "690ac6cc540b99643b27ba43acc3d4f7d9d0cc8672878cfb5cbc56ff06af931b",
    "Kernel._prepare_dispatch_entry": "cc338f17b1c23d68a4bc819f8ada7bb3b96b1710bc78925290430f7dbe51d4f5",
    "Kernel._compute_is_distributed": "190550bff1dd82b4eca1c1a9435211fbebd852b82361ad1754370abde34baba0",
    "Kernel._fast_dispatch_key": "786d3ddcb70d2e1bd71b879301d8038a3ceae75f53d974c8b918e825ce5c5a5c",
    "Kernel._fast_dispatch_key_and_guards": "6d2ba22558af1d5fb99cd6cc392d912df942dddbc7718239b5ee78e75bb38688",
    "Kernel._extend_bound_kernel_specializations": "9917a8ede760bbd6b0c1aed0ec0ad3ae181da579f8a743c8b90b16e45b90f1b0",
    "Kernel._publish_guard_facts": "c52e4ec8db540d58c6616524ddbb2cf2bb141771f1a3edd475a8e9def27bcd0f",
    "_PreparedCall": "a1880d6f90b49f7dcf4fa2557fd34dd5f47b6748b109c95a1acf1195527f0583",
    "_PreparedCall.__init__": "250c7bdc515d730fbae2d2591e749df7b931d4e1ea7b02011f684fd29e00ef14",
    "_PreparedCall.build": "ce538f906c9680f58c838a667c17db45f229f1bce1423ad033019bea725c4b2f",
    "_PreparedCall.matches": "c02fc0126b54e00a56c3f7a6da33cbbfebd8ad0599304b8eada6a810752eab73",
    "_make_prepared_arg_guard": "5775a7a5bddca2c17d235d98baf1d94b6b0d6b016b3626dca17a242de2c47635",
    "_partition_prepared_extra_guards": "6f05874ead3aa5613e459d28a69fe37f05d63f70e9061c9d10eeff9f70a06876",
    "BoundKernel.set_config": "8b81a200581cfd5282a1f69d78921bb2393dc301d7fd2239c1d381ddf91c9b32",
    "BoundKernel.__call__": "741b41067faaa4aae2482f86c3717303a67c9c09913228332a014e0c7df5d6f5",
    "default_launcher": "a5299a87edc39d68b4793034624299e13fc54d30aa57c1c7bea4ca6c53eb7947",
    "ConstExpr": "e72968de15c2ba318de7e18ee7bb99ba7d30abd44195a344559835ad6d537f6f",
}

# Entries per kernel: each distinct argument metadata Helion compiled for (shapes, dtypes, strides,
# aliasing, constexpr values) takes one; the least recently used goes when a new one comes.
CAPACITY = 16

VERSION_NOT_TESTED = "helion version not tested"
SOURCE_CHANGED = "helion source changed"

# What `helion_dispatch` returns instead of a result: run the call through Helion and learn from it /
# run it through Helion only (the reason is already counted).
HAND_BACK = object()
REFUSED = object()

_lock = threading.RLock()
# (original `Kernel.__call__`, the shim) while installed.
_installed: tuple | None = None
# Why the last `install()` refused ("" when it did not).
refusal = ""
# Whether the output pool is on, and why it is off when it was asked for ("" otherwise).
_pool_on = False
pool_refusal = ""
# Whether hits record and run plans (the second stage) as last configured.
_native_run_on = True

# `SWIFTLAUNCH_HELION_NATIVE_RUN=0` keeps every hit in the first stage (the wrapper runs in Python with
# swiftlaunch's launcher); by default eligible wrappers run natively (`_helion_plan`).
NATIVE_RUN_ENV = "SWIFTLAUNCH_HELION_NATIVE_RUN"

# `SWIFTLAUNCH_HELION_CALL_SLOT=0` keeps calls going through the shim's Python frame; by default
# `Kernel`'s call slot runs the shim's code natively (HelionCallSlot.swift), `__call__` staying the shim.
CALL_SLOT_ENV = "SWIFTLAUNCH_HELION_CALL_SLOT"
# How an installed Kernel is called: the native call slot, or the Python shim and why.
call_slot = "not installed"


class _SlotProbe:
    """A class with a Python `__call__`: its call slot is CPython's generic one, which
    `helion_call_slot_install` looks for in `Kernel`."""

    def __call__(self):
        return None


def _kernel_module():
    return importlib.import_module("helion.runtime.kernel")


def mirrored_functions() -> dict:
    """The functions (and classes) whose sources `MIRRORED_SOURCES` records, by the same names."""
    import helion.runtime
    from helion.language.constexpr import ConstExpr

    module = _kernel_module()
    kernel, bound = module.Kernel, module.BoundKernel
    # The original method while installed: the shim stands in the class dict then.
    call = _installed[0] if _installed is not None else kernel.__dict__["__call__"]
    return {
        "Kernel.__init__": kernel.__init__,
        "Kernel.__call__": call,
        "Kernel.reset": kernel.reset,
        "Kernel.normalize_args": kernel.normalize_args,
        "Kernel._validate_structural_policy": kernel._validate_structural_policy,
        "Kernel.cute_structural_policy": inspect.getattr_static(kernel, "cute_structural_policy").fget,
        "Kernel._prepare_dispatch_entry": kernel._prepare_dispatch_entry,
        "Kernel._compute_is_distributed": kernel._compute_is_distributed,
        "Kernel._fast_dispatch_key": kernel._fast_dispatch_key,
        "Kernel._fast_dispatch_key_and_guards": kernel._fast_dispatch_key_and_guards,
        "Kernel._extend_bound_kernel_specializations": kernel._extend_bound_kernel_specializations,
        "Kernel._publish_guard_facts": kernel._publish_guard_facts,
        # The class (its slots) and each method: patching a method leaves the class's source as it was.
        "_PreparedCall": module._PreparedCall,
        "_PreparedCall.__init__": module._PreparedCall.__init__,
        "_PreparedCall.build": _unwrapped(inspect.getattr_static(module._PreparedCall, "build")),
        "_PreparedCall.matches": module._PreparedCall.matches,
        "_make_prepared_arg_guard": module._make_prepared_arg_guard,
        "_partition_prepared_extra_guards": module._partition_prepared_extra_guards,
        "BoundKernel.set_config": bound.set_config,
        "BoundKernel.__call__": bound.__call__,
        "default_launcher": helion.runtime.default_launcher,
        "ConstExpr": ConstExpr,
    }


def _unwrapped(attribute):
    """The function inside a classmethod or staticmethod (what its source is read from)."""
    return attribute.__func__ if isinstance(attribute, (classmethod, staticmethod)) else attribute


def source_hash(function) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


def changed_sources() -> list[str]:
    """Names of mirrored functions whose source differs from the tested one (or cannot be read)."""
    changed = []
    for name, function in mirrored_functions().items():
        try:
            digest = source_hash(function)
        except (OSError, TypeError):
            digest = None
        if digest != MIRRORED_SOURCES[name]:
            changed.append(name)
    return changed


def _has_class_attribute(owner: type, name: str) -> bool:
    try:
        inspect.getattr_static(owner, name)
    except AttributeError:
        return False
    return True


def layout_problem() -> str:
    """Why the native dispatch could not read what Helion's guard reads the way Python reads it, or "".

    The native side reads the kernel's and bound kernel's attributes from their `__dict__`s (right
    while their classes define no attribute of those names and no attribute hooks), a tensor's dtype,
    shape and device through torch's C shim (right while those are `TensorBase`'s own data
    descriptors, which no instance attribute can shadow), and `hl.constexpr(v).value` as item 0 (right
    while `value` is the NamedTuple's field getter)."""
    import torch
    from helion.language.constexpr import ConstExpr

    module = _kernel_module()
    object_getattribute = object.__getattribute__
    for owner, names in ((module.Kernel, ("_reset_generation", "_specialization_generation", "_cute_structural_policy",
                                          "_prepared_call", "_annotations", "_key_fn", "settings")),
                         (module.BoundKernel, ("_run",))):
        for name in names + ("__getattr__",):
            if _has_class_attribute(owner, name):
                return f"{owner.__name__} defines {name}"
        if owner.__getattribute__ is not object_getattribute or not owner.__weakrefoffset__:
            return f"{owner.__name__} overrides attribute lookup or takes no weak references"
    if not isinstance(inspect.getattr_static(module._PreparedCall, "_matches_args", None), types.MemberDescriptorType):
        return "_PreparedCall._matches_args is not a slot"
    if module.dist is not torch.distributed:
        return "helion.runtime.kernel.dist is not torch.distributed"
    base = torch._C.TensorBase
    for cls in (torch.Tensor, torch.nn.Parameter):
        if cls.__getattribute__ is not object_getattribute or _has_class_attribute(cls, "__getattr__"):
            return f"{cls.__name__} overrides attribute lookup"
        if _has_class_attribute(cls, "_dynamo_static_indices"):
            return f"{cls.__name__} defines _dynamo_static_indices"
        for name in ("dtype", "shape", "device"):
            attribute = inspect.getattr_static(cls, name, None)
            if attribute is not base.__dict__.get(name) or not hasattr(type(attribute), "__set__"):
                return f"{cls.__name__}.{name} is not TensorBase's data descriptor"
        if inspect.getattr_static(cls, "stride", None) is not base.__dict__.get("stride"):
            return f"{cls.__name__}.stride is not TensorBase's"
    value = ConstExpr.__dict__.get("value")
    if (ConstExpr._fields != ("value",) or ConstExpr.__dictoffset__ != 0 or type(value).__name__ != "_tuplegetter"
            or ConstExpr.__getattribute__ is not tuple.__getattribute__):
        return "ConstExpr is not a one-field NamedTuple"
    return ""


def helion_version(helion) -> str:
    """`helion.__version__` where the package sets one (1.5.0 does not), else its installed
    distribution's version."""
    version = getattr(helion, "__version__", None)
    if version is None:
        from importlib import metadata

        try:
            version = metadata.version("helion")
        except metadata.PackageNotFoundError:
            version = "unknown"
    return str(version)


def gate() -> tuple[str, str]:
    """`(counted reason, message)` saying why `install()` must not patch anything; ("", "") when it may."""
    try:
        import helion
    except ImportError as error:
        return "helion: not importable", f"helion does not import: {error}"
    version = helion_version(helion)
    if version not in TESTED_HELION and os.environ.get(_runtime.ALLOW_UNTESTED, "") in ("", "0"):
        return VERSION_NOT_TESTED, (f"helion {version} is not a tested version (tested: {', '.join(TESTED_HELION)}; "
                                    f"{_runtime.ALLOW_UNTESTED}=1 overrides the version check, not the source check)")
    changed = changed_sources()
    if changed:
        return SOURCE_CHANGED, f"helion {version}: the source of {', '.join(changed)} differs from the tested one"
    problem = layout_problem()
    if problem:
        return "helion: layout not mirrored", f"helion {version}: {problem}"
    if _loader.native is None:
        return "native core unavailable", f"the native core did not load: {_loader.reason}"
    if not _runtime.ensure_configured():
        return "untested stack", _runtime.pass_through_reason
    if not _runtime.reader_status.startswith("native"):
        return "helion: native tensor reader off", f"the native tensor reader is off: {_runtime.reader_status}"
    return "", ""


def _constexpr_mask(kernel) -> tuple:
    from helion.language.constexpr import ConstExpr

    return tuple(annotation is ConstExpr for annotation in kernel._annotations)


def _kernel_refusal(kernel) -> str:
    """Why no call of this kernel can be dispatched natively (until its next reset), or ""."""
    module = _kernel_module()
    if type(kernel) is not module.Kernel:
        return "helion: Kernel subclass"
    if kernel._key_fn is not None:
        return "helion: key="
    if kernel.settings.backend != "triton":
        return f"helion: {kernel.settings.backend} backend"
    if module.is_ref_mode_enabled(kernel.settings):
        return "helion: reference mode (HELION_INTERPRET)"
    if kernel._cute_structural_policy is not None:
        return "helion: structural policy"
    return ""


def _prepared_refusal(kernel, prepared, args) -> str:
    """Why Helion's prepared call cannot become a native entry for `args`, or ""."""
    import helion.runtime

    if prepared._dist_initialized:
        return "helion: process group initialized"
    if prepared._extra_guards:
        return "helion: extra guards (hl.specialize, tensor descriptors, content classifiers)"
    if prepared._reusable_extra_guards or prepared._tensor_storage_reuse_guard is not None:
        return "helion: storage-reuse guards"
    run = prepared.bound._run
    if run is None:
        return "helion: no wrapper"
    defaults = getattr(run, "__kwdefaults__", None) if type(run) is types.FunctionType else None
    if not defaults or defaults.get("_launcher") is not helion.runtime.default_launcher:
        return "helion: wrapper without Helion's default launcher"
    if not prepared.matches(kernel, args):
        return "helion: prepared call does not match"
    # Helion's other path to a wrapper for these arguments, its dispatch cache, must pick the same
    # bound kernel: Helion publishes the two together, so they disagree only if something else
    # changed one of them since.
    fast_key = kernel._fast_dispatch_key(args)
    if fast_key is None or kernel._dispatch_cache.get(fast_key) is not prepared.bound:
        return "helion: dispatch cache disagrees with the prepared call"
    return ""


def _learn(kernel, args) -> None:
    """After Helion ran `kernel(*args)`: learn the wrapper its prepared call picks for these arguments,
    or count why not. Never raises into the caller's code: the call itself already succeeded."""
    from .helion import Launcher

    native = _loader.native
    try:
        reason = _kernel_refusal(kernel)
        if reason:
            native.helion_refuse(kernel, reason, True, kernel._reset_generation, kernel._specialization_generation)
            return
        prepared = kernel._prepared_call
        if prepared is None:
            native.helion_refuse(kernel, "helion: no prepared call", None, 0, 0)
            return
        guard = prepared._matches_args
        reason = _prepared_refusal(kernel, prepared, args)
        if reason:
            native.helion_refuse(kernel, reason, guard, kernel._reset_generation, kernel._specialization_generation)
            return
        bound = prepared.bound
        native.helion_learn(kernel, args, bound, bound._run, prepared._reset_generation,
                            prepared._specialization_generation, guard, _constexpr_mask(kernel), Launcher)
    except Exception as error:  # noqa: BLE001 -- learning is optional; the reason is counted
        _triton.count_fallback(f"helion: learning failed ({type(error).__name__})")


def _make_handed_back(original):
    hand_back, learn = HAND_BACK, _learn

    def handed_back(self, args, result):
        """A call the native dispatch did not run (`result` is its marker): Helion's own call, learned
        from when it was handed back rather than refused."""
        if result is hand_back:
            value = original(self, *args)
            learn(self, args)
            return value
        return original(self, *args)

    return handed_back


def _make_shim(original, handed_back):
    import torch

    native = _loader.native
    dispatch = native.helion_dispatch
    count = native.count_fallback
    # `torch.compiler.is_compiling()` is `_is_compiling_flag` at run time (TorchScript never runs
    # this) and a constant True while Dynamo traces; so is this pair, at a third of the cost (~25 ns
    # for a function that returns False, where `is_compiling` makes two Python calls).
    is_dynamo_compiling = torch.compiler.is_dynamo_compiling
    compiler = torch.compiler
    hand_back, refused = HAND_BACK, REFUSED

    @functools.wraps(original)
    def __call__(self, *args, **kwargs):
        # Dynamo traces this function (it looks up `type(kernel).__call__`): while compiling it sees
        # only Helion's own method. Export sets `_is_compiling_flag` while it runs Python on fake
        # tensors: Helion's own method then too.
        if is_dynamo_compiling() or compiler._is_compiling_flag:
            return original(self, *args, **kwargs)
        if kwargs:
            count("helion: keyword arguments")
            return original(self, *args, **kwargs)
        result = dispatch(self, args)
        if result is hand_back or result is refused:
            return handed_back(self, args, result)
        return result

    return __call__


def _install_call_slot(native, kernel_type, shim, handed_back) -> str:
    """Points `Kernel`'s call slot at the shim's code in native form (HelionCallSlot.swift); returns
    the status line."""
    import torch.compiler

    if os.environ.get(CALL_SLOT_ENV, "") == "0":
        return f"python shim ({CALL_SLOT_ENV}=0)"
    try:
        native.helion_call_slot_install(kernel_type, _SlotProbe, shim, handed_back, vars(torch.compiler))
    except (RuntimeError, TypeError) as error:
        return f"python shim (the call slot could not be set: {error})"
    return "native call slot (Kernel.__call__ stays the shim, for Dynamo)"


def _wants_pool(output_pool: bool) -> bool:
    from . import _helion_pool

    return bool(output_pool) or os.environ.get(_helion_pool.ENV, "") not in ("", "0")


def _configure_stages(native, output_pool: bool) -> None:
    """The second stage and the pool, as asked. A change of either drops every table: entries keep
    the stage they reached, and plans made without a pool would keep running without one (and the
    other way round)."""
    global _pool_on, pool_refusal, _native_run_on
    from . import _helion_pool, _helion_plan

    native_run = os.environ.get(NATIVE_RUN_ENV, "") != "0"
    native.helion_native_configure(_helion_plan.record if native_run else None)
    if native_run != _native_run_on:
        native.helion_forget(None)  # entries keep the stage they reached: start them again
        _native_run_on = native_run
    want = _wants_pool(output_pool)
    if want and not native_run:
        pool_refusal = f"{NATIVE_RUN_ENV}=0 (the pool serves natively run calls only)"
        warnings.warn(f"swiftlaunch.helion.install(output_pool=True): the output pool stays off: {pool_refusal}",
                      RuntimeWarning, stacklevel=4)
        want = False
    elif not want:
        pool_refusal = ""
    if want == _pool_on:
        return
    if want:
        pool_refusal = ""
        problem = _helion_pool.configure(native)
        if problem:
            pool_refusal = problem
            _triton.count_fallback("helion: output pool off")
            warnings.warn(f"swiftlaunch.helion.install(output_pool=True): the output pool stays off: {problem}",
                          RuntimeWarning, stacklevel=4)
            want = False
    else:
        native.helion_pool_configure(None)
    if want != _pool_on:
        native.helion_forget(None)
    _pool_on = want


def install(output_pool: bool = False) -> bool:
    global _installed, refusal, call_slot
    with _lock:
        if _installed is not None:
            _configure_stages(_loader.native, output_pool)
            return True
        counted, message = gate()
        if counted:
            refusal = message
            _triton.count_fallback(counted)
            warnings.warn(f"swiftlaunch.helion.install(): {message}; Helion kernels run unchanged.", RuntimeWarning,
                          stacklevel=3)
            return False
        import torch
        from helion.language.constexpr import ConstExpr

        module = _kernel_module()
        native = _loader.native
        native.helion_configure(HAND_BACK, REFUSED, module.Kernel, (int, float, bool, type(None), str),
                                (torch.dtype, torch.device), ConstExpr, (tuple, list, dict), vars(module),
                                torch._C._is_torch_function_mode_enabled, torch.empty(0), CAPACITY)
        _configure_stages(native, output_pool)
        original = module.Kernel.__dict__["__call__"]
        handed_back = _make_handed_back(original)
        shim = _make_shim(original, handed_back)
        module.Kernel.__call__ = shim
        call_slot = _install_call_slot(native, module.Kernel, shim, handed_back)
        _installed = (original, shim)
        refusal = ""
        return True


def pool_on() -> bool:
    return _pool_on


def uninstall() -> bool:
    """Puts Helion's own `Kernel.__call__` back and drops every native table; False if not installed."""
    global _installed, _pool_on, pool_refusal, _native_run_on, call_slot
    with _lock:
        if _installed is None:
            return False
        original, shim = _installed
        module = _kernel_module()
        _loader.native.helion_call_slot_uninstall()
        call_slot = "not installed"
        if module.Kernel.__dict__.get("__call__") is shim:
            module.Kernel.__call__ = original
        else:
            warnings.warn("swiftlaunch.helion.uninstall(): Kernel.__call__ was replaced after install() and is left "
                          "as it is; swiftlaunch's dispatch is off", RuntimeWarning, stacklevel=3)
        native = _loader.native
        native.helion_configure(None)
        native.helion_native_configure(None)
        native.helion_pool_configure(None)
        native.helion_forget(None)
        _pool_on, pool_refusal, _native_run_on = False, "", True
        _installed = None
        return True


def installed() -> bool:
    return _installed is not None
