"""The Swift core's specialization equals Triton's `native_specialize_impl`, and its dispatch keys
are equal exactly when Triton's cache keys are."""

import itertools

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triton._C.libtriton import native_specialize_impl
from triton.backends.compiler import BaseBackend

from swiftlaunch._runtime import triton_dtype_names

DTYPES = [dtype for dtype, _ in triton_dtype_names()]

INTEGER_EDGES = [0, 1, 2, -1, 15, 16, 17, -16, -17, 2**14, 2**14 + 16, -(2**14)]
for base in (2**31, 2**32, 2**63, 2**64):
    INTEGER_EDGES += [base - 16, base - 1, base, base + 1, base + 16, -base, -base - 1, -base + 16]


def tensors():
    """CPU tensors of every dtype Triton names, including offset views that are not 16-byte aligned."""

    @st.composite
    def build(draw):
        dtype = draw(st.sampled_from(DTYPES))
        base = torch.empty(64, dtype=dtype)
        offset = draw(st.integers(0, 40))
        return base[offset:]

    return build()


arguments = st.one_of(
    tensors(),
    st.sampled_from(INTEGER_EDGES),
    st.integers(-(2**65), 2**65),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.none(),
)

FLAGS = list(itertools.product([False, True], repeat=3))


def triton_result(arg, is_const, specialize, align):
    try:
        return "ok", native_specialize_impl(BaseBackend, arg, is_const, specialize, align)
    except Exception as error:  # the exception type is part of the contract
        return type(error), None


def native_result(native, arg, is_const, specialize, align):
    try:
        return "ok", native.specialize(arg, is_const, specialize, align)
    except Exception as error:
        return type(error), None


DRAWN = {"lists": 0, "arguments": 0}


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=st.lists(arguments, min_size=1, max_size=8))
def test_specialization_matches_triton(native, args):
    # Each drawn argument list is checked under all 8 (is_const, specialize, align) combinations.
    DRAWN["lists"] += 1
    DRAWN["arguments"] += len(args)
    for arg in args:
        for is_const, specialize, align in FLAGS:
            expected = triton_result(arg, is_const, specialize, align)
            assert native_result(native, arg, is_const, specialize, align) == expected, (arg, is_const, specialize, align)


def test_parity_drew_enough(native):
    """Runs after the property test (pytest keeps file order): it really drew 10,000 lists."""
    print(f"specialization parity: {DRAWN['lists']} argument lists, {DRAWN['arguments']} arguments")
    assert DRAWN["lists"] >= 10_000


def test_parity_covers_every_edge(native):
    """The edges hypothesis may or may not draw, checked one by one."""
    checked = 0
    for dtype in DTYPES:
        base = torch.empty(64, dtype=dtype)
        for offset in range(0, 17):
            for flags in FLAGS:
                assert native_result(native, base[offset:], *flags) == triton_result(base[offset:], *flags)
                checked += 1
    for value in INTEGER_EDGES + [True, False, 0.0, -0.0, 1.5, float("inf"), float("nan"), None]:
        for flags in FLAGS:
            assert native_result(native, value, *flags) == triton_result(value, *flags), value
            checked += 1
    assert checked > 2000


# --- dispatch keys -----------------------------------------------------------------------------

def _binder(fn):
    from triton.backends.compiler import GPUTarget
    from triton.backends.nvidia.compiler import CUDABackend
    from triton.runtime.jit import create_function_from_signature

    backend = CUDABackend(GPUTarget("cuda", 90, 32))
    return create_function_from_signature(fn.signature, fn.params, backend)


def triton_key(binder, args, kwargs):
    """What Triton's `kernel_key_cache` is keyed by: `(tuple(specialization), str(options))`."""
    options = dict(kwargs)
    options["debug"] = False
    options["instrumentation_mode"] = ""
    try:
        _, specialization, options = binder(*args, **options)
    except Exception as error:
        return ("raises", type(error))
    return (tuple(specialization), str(options))


small_ints = st.sampled_from([1, 2, 16, 17, -16, 2**31, 2**32 + 16, 2**63])


@st.composite
def add_calls(draw):
    base = torch.empty(64, dtype=draw(st.sampled_from([torch.float32, torch.float16, torch.int32])))
    tensors = [base[draw(st.integers(0, 8)):] for _ in range(3)]
    n = draw(st.one_of(small_ints, st.booleans(), st.floats(-4, 4)))
    block = draw(st.sampled_from([1, 1.0, True, 2, 2.0, 2.5, 64, "x", None]))
    kwargs = {"BLOCK": block}
    if draw(st.booleans()):
        kwargs["num_warps"] = draw(st.sampled_from([4, 4.0, True, 8]))
    return tensors + [n], kwargs


@settings(max_examples=400, deadline=None)
@given(first=add_calls(), second=add_calls())
def test_native_keys_equal_exactly_when_triton_keys_are(native, first, second):
    import swiftlaunch
    from swiftlaunch.bench.kernels import add_kernel

    binder = _binder(add_kernel)
    keys = [swiftlaunch.dispatch_key(add_kernel, *args, **kwargs) for args, kwargs in (first, second)]
    tkeys = [triton_key(binder, args, kwargs) for args, kwargs in (first, second)]
    if None in keys:
        # The core hands such calls to Triton; only keys it computes must agree.
        return
    assert (keys[0] == keys[1]) == (tkeys[0] == tkeys[1]), (first, second, tkeys)


def test_key_examples(native):
    import swiftlaunch
    from cpu_kernels import flags_kernel
    from swiftlaunch.bench.kernels import add_kernel

    x = torch.empty(64)
    key = lambda *a, **k: swiftlaunch.dispatch_key(add_kernel, *a, **k)
    assert key(x, x, x, 4, BLOCK=64) == key(x, x, x, 5, BLOCK=64)  # neither divisible by 16
    assert key(x, x, x, 4, BLOCK=64) != key(x, x, x, 16, BLOCK=64)
    assert key(x, x, x, 4, BLOCK=64) != key(x, x, x, 1, BLOCK=64)  # 1 becomes a constant
    assert key(x, x, x[1:], 4, BLOCK=64) != key(x, x, x, 4, BLOCK=64)  # alignment
    assert key(x, x, x, 4, BLOCK=1) == key(x, x, x, 4, BLOCK=True) == key(x, x, x, 4, BLOCK=1.0)
    assert key(x, x, x, 4, BLOCK=64, num_warps=4) != key(x, x, x, 4, BLOCK=64, num_warps=4.0)
    assert key(x, x, x, 4, BLOCK=64) != key(x, x, x, 4, BLOCK=64, device=1)
    assert key(x, x, x, 4, BLOCK=[64]) is None  # a list constexpr goes to Triton
    # do_not_specialize / annotations
    fkey = lambda *a: swiftlaunch.dispatch_key(flags_kernel, *a)
    args = [x, x, x, 16, x, 16, 1.0, 3]
    assert fkey(*args) == fkey(x, x, x, 17, x, 16, 1.0, 3)  # d is not specialized
    assert fkey(*args) == fkey(x, x, x, 16, x[1:], 16, 1.0, 3)  # e ignores alignment
    assert fkey(*args) != fkey(x, x, x, 16, x, 17, 1.0, 3)  # f: i32 still keyed on % 16
    assert fkey(*args) == fkey(x, x, x, 16, x, 16, 2.0, 3)  # g: fp16 not specialized
