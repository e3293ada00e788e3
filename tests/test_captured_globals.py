"""Triton's per-launch check of a kernel's captured globals, `globals_dict.get(name) != val`, as the
core makes it (`_native.global_differs`): the same answer as Python's `bool(current != recorded)` on
every value, and for two `tl.constexpr`s of plain scalars without running Python code. No GPU needed."""

import copy
import math

import pytest

torch = pytest.importorskip("torch")
triton = pytest.importorskip("triton")

from hypothesis import given, settings, strategies as st  # noqa: E402
from triton.language import core  # noqa: E402

import swiftlaunch  # noqa: E402
from swiftlaunch import _runtime  # noqa: E402

plain = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**80, max_value=2**80),
                  st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3))


def python_differs(current, recorded):
    try:
        return bool(current != recorded)
    except Exception:  # noqa: BLE001 -- the core answers None when `!=` raises
        return None


@settings(max_examples=400, deadline=None)
@given(a=plain, b=plain, wrap_a=st.booleans(), wrap_b=st.booleans(), copied=st.booleans())
def test_same_answer_as_python(native, a, b, wrap_a, wrap_b, copied):
    current = core.constexpr(a) if wrap_a else a
    recorded = core.constexpr(b) if wrap_b else b
    differs, decided_natively = native.global_differs(current, recorded)
    assert differs is python_differs(current, recorded)
    assert decided_natively == (wrap_a == wrap_b)
    # Triton records a deep copy: the global against its own copy, and against itself.
    for other in (copy.deepcopy(current), current):
        differs, _ = native.global_differs(current, other)
        assert differs is python_differs(current, other)


def test_nan_differs_from_itself(native):
    nan = core.constexpr(math.nan)
    assert native.global_differs(nan, nan) == (True, True)
    assert native.global_differs(math.nan, math.nan) == (True, True)


class Loud:
    def __init__(self, result):
        self.result = result
        self.calls = 0

    def __ne__(self, other):
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_python_ne_runs_and_is_reported(native):
    for result, expected in ((False, False), (True, True), (0, False), ([1], True), (ValueError("no"), None)):
        loud = Loud(result)
        assert native.global_differs(loud, loud) == (expected, False)
        assert loud.calls == 1


def test_constexpr_of_a_non_scalar_goes_through_python(native):
    tuple_value = core.constexpr((1, 2))
    assert native.global_differs(tuple_value, copy.deepcopy(tuple_value)) == (python_differs(tuple_value, tuple_value),
                                                                               False)


def test_status_is_reported(native):
    assert _runtime.constexpr_status.startswith("native for constexprs"), _runtime.constexpr_status
    assert swiftlaunch.stats()["captured_globals"] == _runtime.constexpr_status


def test_changed_constexpr_code_turns_it_off(native, monkeypatch):
    """A constexpr whose `__ne__` is not a checked version is compared through Python's `!=`."""
    original = core.constexpr.__ne__

    def __ne__(self, other):  # a different source: the glue must not mirror it
        return original(self, other)

    monkeypatch.setattr(core.constexpr, "__ne__", __ne__)
    try:
        _runtime._configure_constexpr(native)
        assert _runtime.constexpr_status == "Python's != (constexpr.__ne__ is not a version checked)"
        assert native.global_differs(core.constexpr(1), core.constexpr(1)) == (False, False)
    finally:
        monkeypatch.undo()
        _runtime._configure_constexpr(native)
    assert _runtime.constexpr_status.startswith("native")
    assert native.global_differs(core.constexpr(1), core.constexpr(1)) == (False, True)
