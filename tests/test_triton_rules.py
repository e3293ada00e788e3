"""The per-release rules as the glue and the native layer apply them, against the installed Triton (CI
runs this file against every supported release), without a GPU:

- the rules picked at configure are the installed release's;
- argument binding (keyword-only parameters, `*args`) agrees with the installed Triton's own binder;
- 3.9's `fpsan_homomorphic_casts` knob, which joins the cache key, keeps calls off the core unless it
  reads `False`, exactly where Triton's descriptor would read `False`; earlier releases ignore it;
- a `FutureKernel` (3.7+ async compilation) is cached only once resolved, as its `CompiledKernel`;
- `_launch_info` refuses instrumented (GSan) kernels, profile scratch, and a driver that does not
  use torch's stream and device.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import types

import pytest
import torch

import swiftlaunch
from cpu_kernels import keyword_only_kernel, var_positional_kernel
from swiftlaunch.bench.kernels import add_kernel


@pytest.fixture(scope="module")
def family(native):
    import triton

    from swiftlaunch import _runtime

    if not _runtime.ensure_configured():
        pytest.skip(f"the core is not in use: {_runtime.pass_through_reason}")
    return _runtime.triton_family(triton.__version__)


def test_configured_rules_are_the_installed_releases(native, family):
    from swiftlaunch import _runtime, info

    assert native.rules() == family == _runtime.rules_family
    assert info.collect()["triton_rules"].startswith(family)


# --- binding ---------------------------------------------------------------------------------------

def _binder(fn):
    from triton.backends.compiler import GPUTarget
    from triton.backends.nvidia.compiler import CUDABackend
    from triton.runtime.jit import create_function_from_signature

    return create_function_from_signature(fn.signature, fn.params, CUDABackend(GPUTarget("cuda", 90, 32)))


CALLS = [((1, 2, 3), {}), ((1, 2), {"n": 3}), ((1, 2, 3, 4), {}), ((1,), {}), ((1, 5, 6), {}), ((1, 2), {}),
         ((), {"x": 1, "y": 2, "n": 3}), ((1,), {"y": 2, "n": 3, "BLOCK": 8}), ((1, 2, 3), {"n": 4}),
         ((1,), {"rest": 5}), ((1, 2), {"rest": 5}), ((1, 16), {}), ((1, 2), {"num_warps": 4})]


@pytest.mark.parametrize("kernel", [keyword_only_kernel, var_positional_kernel, add_kernel],
                         ids=lambda k: k.fn.__name__)
def test_binding_agrees_with_tritons_binder(family, kernel):
    binder = _binder(kernel)
    fast = swiftlaunch.fast(kernel)
    if type(fast).__name__ == "PassThroughKernel":  # 3.8+: `*args` binds a tuple; every call goes to Triton
        assert family in ("3.8", "3.9") and kernel is var_positional_kernel
        return
    checked = 0
    for args, kwargs in CALLS + [((x, x, x, 16), {"BLOCK": 16}) for x in [torch.zeros(4)]]:
        try:
            bound, _, _ = binder(*args, **kwargs)
        except TypeError:
            # Triton's binder rejects the call (3.9: a keyword-only parameter given positionally):
            # the core must leave it to Triton, which raises.
            assert swiftlaunch.dispatch_key(fast, *args, **kwargs) is None, (args, kwargs)
            checked += 1
            continue
        key = swiftlaunch.dispatch_key(fast, *args, **kwargs)
        if key is None:
            continue  # the core steps aside (a tuple, say); Triton runs the call
        options = {name: value for name, value in kwargs.items() if name not in bound}
        # The core bound the same values to the same parameters: the same key as naming every one.
        assert key == swiftlaunch.dispatch_key(fast, **bound, **options), (args, kwargs, bound)
        checked += 1
    assert checked >= 5


def test_keyword_only_and_var_positional_per_release(family):
    fast = swiftlaunch.fast(keyword_only_kernel)
    positional = swiftlaunch.dispatch_key(fast, 1, 2, 3)
    by_keyword = swiftlaunch.dispatch_key(fast, 1, 2, n=3)
    assert by_keyword is not None
    if family == "3.9":
        assert positional is None  # Triton raises TypeError
    else:
        assert positional == by_keyword  # 3.6-3.8 keep no keyword-only separator
    varargs = swiftlaunch.fast(var_positional_kernel)
    if family in ("3.8", "3.9"):
        assert type(varargs).__name__ == "PassThroughKernel"  # *args binds a tuple
        assert "*args" in repr(varargs)
    else:
        assert swiftlaunch.dispatch_key(varargs, 1, 2) is not None  # `rest` is a plain parameter


# --- 3.9: fpsan_homomorphic_casts --------------------------------------------------------------------

FPSAN = "TRITON_FPSAN_HOMOMORPHIC_CASTS"


def _guard_trips(native) -> bool:
    """Calls a kernel through the core's launch path (the miss handler does nothing) and says whether
    the fpsan guard sent it to Triton. Without a GPU the call leaves later for another reason."""
    from swiftlaunch import _triton

    names, traits, defaults = _triton.parameter_tables(add_kernel)
    kernel = native.Kernel(add_kernel, lambda *a: None, names, traits, defaults, ())
    swiftlaunch.stats(reset=True)
    kernel[(1,)](16, 32, 48, 16, BLOCK=16)
    return "fpsan knob set" in swiftlaunch.stats()["fallbacks"]


@pytest.fixture
def compilation_knobs(monkeypatch):
    from triton import knobs

    monkeypatch.delenv(FPSAN, raising=False)
    saved = dict(knobs.compilation.__dict__)
    yield knobs.compilation
    knobs.compilation.__dict__.clear()
    knobs.compilation.__dict__.update(saved)


@pytest.mark.parametrize("env,instance", [
    (None, None), ("0", None), ("", None), ("1", None), ("true", None), ("on", None), ("no", None),
    (None, False), (None, True), (None, 0), (None, 1), ("1", False), ("0", True),
])
def test_fpsan_knob_guard(native, family, compilation_knobs, monkeypatch, env, instance):
    if env is not None:
        monkeypatch.setenv(FPSAN, env)
    if instance is not None:
        compilation_knobs.__dict__["fpsan_homomorphic_casts"] = instance
    trips = _guard_trips(native)
    if family != "3.9":
        assert not trips  # earlier releases do not key on it
        return
    value = compilation_knobs.fpsan_homomorphic_casts  # Triton's own reading, through its descriptor
    if not trips:
        assert value is False  # the core launches only what Triton keys with False
    # Where Triton reads False the core launches too, but for environment spellings it does not parse
    # ("no", ...): those go to Triton, which is slower and never wrong.
    if value is False and not (env not in (None, "", "0") and instance is None):
        assert not trips, (env, instance)
    if value is not False:
        assert trips, (env, instance, value)


def test_fpsan_knob_set_through_tritons_setter(native, family, compilation_knobs):
    if family != "3.9":
        pytest.skip("3.9's fpsan_homomorphic_casts")
    compilation_knobs.fpsan_homomorphic_casts = True  # writes the instance dict and the environment
    assert _guard_trips(native)
    compilation_knobs.fpsan_homomorphic_casts = False
    assert not _guard_trips(native)
    del compilation_knobs.fpsan_homomorphic_casts  # the environment keeps "0"
    assert not _guard_trips(native)


# --- FutureKernel -------------------------------------------------------------------------------------

def _future_kernel(future):
    from triton.runtime._async_compile import FutureKernel

    parameters = list(inspect.signature(FutureKernel).parameters)
    callbacks = [lambda *a: None] * (len(parameters) - 1)  # finalize[, cleanup]
    return FutureKernel(*callbacks, future)


def test_future_kernel_is_cached_only_once_resolved(family):
    from swiftlaunch import _triton

    compiled = types.SimpleNamespace(name="a CompiledKernel")
    future = concurrent.futures.Future()
    pending = _future_kernel(future)
    assert _triton.resolved_kernel(pending) is None
    future.set_result(compiled)
    assert _triton.resolved_kernel(pending) is None  # done, but nothing called result() yet
    assert pending.result() is compiled
    assert _triton.resolved_kernel(pending) is compiled
    assert _triton.resolved_kernel(compiled) is compiled


# --- _launch_info ------------------------------------------------------------------------------------

class CudaDriver:  # the name `_launch_info` checks; torch's device and stream, as Triton's own has them
    get_current_stream = staticmethod(torch._C._cuda_getCurrentRawStream)
    get_current_device = staticmethod(torch.cuda.current_device)


def _compiled(**metadata):
    from triton.compiler.compiler import CompiledKernel

    compiled = CompiledKernel.__new__(CompiledKernel)
    compiled.module = None  # 3.8+'s __del__ unloads a loaded module
    compiled._module_pid = None
    fields = dict(tensordesc_meta=None, profile_scratch_size=0, instrumentation_mode="", launch_cooperative_grid=False,
                  launch_pdl=False, global_scratch_size=0, global_scratch_align=1)
    fields.update(metadata)
    compiled.metadata = types.SimpleNamespace(**fields)
    compiled.function = 0xF00D
    compiled.packed_metadata = (4, 1, 0)
    compiled.src = types.SimpleNamespace(signature={"out_ptr": "*fp32", "x_ptr": "*fp32", "y_ptr": "*fp32",
                                                    "n": "i32", "BLOCK": "constexpr"})
    return compiled


@pytest.fixture
def active_driver():
    import triton

    config = triton.runtime.driver
    saved = config._active  # `reset_active` would make the default driver, which needs a GPU

    def use(driver):
        config.set_active(driver)

    yield use
    config._active = saved


@pytest.mark.parametrize("metadata", [{}, {"fpsan_homomorphic_casts": False}])
def test_launch_info_accepts_a_plain_kernel(family, active_driver, metadata):
    from swiftlaunch import _triton

    active_driver(CudaDriver())
    info, why = _triton._launch_info(add_kernel, _compiled(**metadata))
    assert why is None and info[0] == 0xF00D and info[-1] == ("*fp32", "*fp32", "*fp32", "i32", "constexpr")


@pytest.mark.parametrize("metadata,reason", [
    ({"instrumentation_mode": "gsan"}, "instrumentation"),
    ({"instrumentation_mode": "consan,fpsan"}, "instrumentation"),
    ({"profile_scratch_size": 64}, "profile scratch"),
    ({"tensordesc_meta": [{}]}, "tensor descriptors"),
    ({"fpsan_homomorphic_casts": True}, "fpsan knob set"),
    ({"fpsan_homomorphic_casts": 0}, "fpsan knob set"),  # keyed as 0, not False
])
def test_launch_info_refuses(family, active_driver, metadata, reason):
    from swiftlaunch import _triton

    active_driver(CudaDriver())
    assert _triton._launch_info(add_kernel, _compiled(**metadata)) == (None, reason)


def test_launch_info_refuses_a_torch_free_driver(family, active_driver):
    from swiftlaunch import _triton

    driver = CudaDriver()
    driver.get_current_stream = lambda device: 0  # 3.8+ without torch: the default stream
    active_driver(driver)
    assert _triton._launch_info(add_kernel, _compiled()) == (None, "driver does not use torch's device and stream")
