"""No `_native` entry point may abort the interpreter: each bad call below raises an ordinary Python
exception of the stated type. Every case runs in its own interpreter, so a crash fails that case
(with its exit signal) instead of taking pytest down.

The cases need neither torch nor a GPU. Where a C compiler is at hand they run a second time against
a stand-in libcuda (scripts/fake_libcuda.c, whose calls do nothing), so that the paths behind the
driver check (raw_launch_loop's argument handling, a cache hit's scratch allocation) are reached as
on a GPU machine.
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from child_env import python_path

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = textwrap.dedent(
    """
    import sys
    from swiftlaunch import _native as n

    n.configure((), (), None, None, None, None, None, None, None, None, (3, 6))  # loads the driver, if any

    def f(a, B):
        pass

    def miss(*args):
        return "miss"

    class Raises:
        def __bool__(self): raise ZeroDivisionError("bool")
        def __index__(self): raise ZeroDivisionError("index")
        def __eq__(self, other): raise ZeroDivisionError("eq")
        __hash__ = None

    TRAIT = (False, False, True, True, None)
    CONSTEXPR = (True, False, True, True, None)
    k = n.Kernel(f, miss, ("a", "B"), (TRAIT, CONSTEXPR), ((False, None), (False, None)), ())
    token = k.key(0, 5, 64)
    INFO = (0, 4, 1, 0, False, False, 0, 1, ("i32", "constexpr"))
    assert k.insert(token, object(), INFO)

    def expect(error, call):
        try:
            call()
        except error as raised:
            print("raised", type(raised).__name__, raised)
            return
        except BaseException as raised:
            sys.exit(f"expected {error.__name__}, got {type(raised).__name__}: {raised}")
        sys.exit(f"expected {error.__name__}, got no exception")
    """
)

CASES = {
    # raw_launch_loop(kernel, token, grid, args, stream, device, iterations)
    "raw grid not a tuple": "expect(TypeError, lambda: n.raw_launch_loop(k, token, 5, (5, 64), 0, 0, 1))",
    "raw grid None": "expect(TypeError, lambda: n.raw_launch_loop(k, token, None, (5, 64), 0, 0, 1))",
    "raw grid empty": "expect(ValueError, lambda: n.raw_launch_loop(k, token, (), (5, 64), 0, 0, 1))",
    "raw grid too long": "expect(ValueError, lambda: n.raw_launch_loop(k, token, (1, 1, 1, 1), (5, 64), 0, 0, 1))",
    "raw grid item str": "expect(TypeError, lambda: n.raw_launch_loop(k, token, ('x',), (5, 64), 0, 0, 1))",
    "raw grid item huge": "expect(OverflowError, lambda: n.raw_launch_loop(k, token, (2**64,), (5, 64), 0, 0, 1))",
    "raw grid item raises": "expect(ZeroDivisionError, lambda: n.raw_launch_loop(k, token, (Raises(),), (5, 64), 0, 0, 1))",
    "raw iterations negative": "expect(ValueError, lambda: n.raw_launch_loop(k, token, (1,), (5, 64), 0, 0, -1))",
    "raw iterations huge": "expect(OverflowError, lambda: n.raw_launch_loop(k, token, (1,), (5, 64), 0, 0, 2**70))",
    "raw iterations float": "expect(TypeError, lambda: n.raw_launch_loop(k, token, (1,), (5, 64), 0, 0, 1.5))",
    "raw device huge": "expect(OverflowError, lambda: n.raw_launch_loop(k, token, (1,), (5, 64), 0, 2**40, 1))",
    "raw stream negative": "expect(OverflowError, lambda: n.raw_launch_loop(k, token, (1,), (5, 64), -1, 0, 1))",
    "raw stream None": "expect(TypeError, lambda: n.raw_launch_loop(k, token, (1,), (5, 64), None, 0, 1))",
    "raw too few args": "expect(ValueError, lambda: n.raw_launch_loop(k, token, (1,), (5,), 0, 0, 1))",
    "raw too many args": "expect(ValueError, lambda: n.raw_launch_loop(k, token, (1,), (5, 64, 1), 0, 0, 1))",
    "raw args not a tuple": "expect(TypeError, lambda: n.raw_launch_loop(k, token, (1,), [5, 64], 0, 0, 1))",
    "raw token str": "expect(TypeError, lambda: n.raw_launch_loop(k, 'x', (1,), (5, 64), 0, 0, 1))",
    "raw token empty": "expect(ValueError, lambda: n.raw_launch_loop(k, b'', (1,), (5, 64), 0, 0, 1))",
    "raw kernel not a kernel": "expect(TypeError, lambda: n.raw_launch_loop(5, token, (1,), (5, 64), 0, 0, 1))",
    "raw kernel spoofed by __class__": textwrap.dedent(
        """
        class Spoof:
            __class__ = property(lambda self: n.Kernel)
        assert isinstance(Spoof(), n.Kernel)
        expect(TypeError, lambda: n.raw_launch_loop(Spoof(), token, (1,), (5, 64), 0, 0, 1))
        """),
    "raw wrong count": "expect(TypeError, lambda: n.raw_launch_loop(k, token))",
    "hit with global scratch and a huge grid": textwrap.dedent(
        """
        # Just enough of Triton for a cache hit to get to the scratch allocation: knobs, a function
        # with Triton's per-kernel guards, an allocator that hands out null buffers.
        import contextvars
        class RuntimeKnobs:
            debug = False
            launch_enter_hook = launch_exit_hook = add_stages_inspection_hook = None
        class CompilationKnobs:
            instrumentation_mode = ""
        class HookChain:
            pass
        class Buffer:
            def data_ptr(self):
                return 0
        allocator = contextvars.ContextVar("allocator")
        allocator.set(lambda size, align, stream: Buffer())
        n.configure((), (), abs, RuntimeKnobs(), CompilationKnobs(), HookChain, allocator, HookChain, None, None, (3, 6))
        f.pre_run_hooks, f.debug, f.used_global_vals = [], False, {}
        hit = n.Kernel(f, miss, ("a", "B"), (TRAIT, CONSTEXPR), ((False, None), (False, None)), ())
        assert hit.insert(hit.key(0, 5, 64), object(), (0, 4, 1, 0, False, False, 128, 16, ("i32", "constexpr")))
        print(hit.launch((1,), 5, 64))  # with a driver: a hit (the stand-in launches nothing)
        # grid x grid x grid x scratch size overflows 64 bits: Triton's path (here `miss`), not a trap.
        assert hit.launch((2**40,) * 3, 5, 64) == "miss"
        """),
    # Kernel(function, miss, names, traits, defaults, implicit_options)
    "kernel names not a tuple": "expect(TypeError, lambda: n.Kernel(f, miss, 'ab', (), (), ()))",
    "kernel name not a str": "expect(TypeError, lambda: n.Kernel(f, miss, (5,), (TRAIT,), ((False, None),), ()))",
    "kernel trait bool raises": "expect(ZeroDivisionError, lambda: n.Kernel(f, miss, ('a',), ((Raises(), 0, 0, 0, None),), ((False, None),), ()))",
    "kernel default bool raises": "expect(ZeroDivisionError, lambda: n.Kernel(f, miss, ('a',), (TRAIT,), ((Raises(), None),), ()))",
    "kernel implicit not a tuple": "expect(TypeError, lambda: n.Kernel(f, miss, (), (), (), 5))",
    "kernel implicit name not a str": "expect(TypeError, lambda: n.Kernel(f, miss, (), (), (), ((5, 1),)))",
    "kernel too many implicit options": textwrap.dedent(
        """
        many = tuple((f"o{i}", i) for i in range(64))
        expect(ValueError, lambda: n.Kernel(f, miss, (), (), (), many))
        """),
    "kernel keyword arguments": "expect(TypeError, lambda: n.Kernel(f, miss, (), (), (), (), extra=1))",
    "kernel function without dict": "expect(TypeError, lambda: n.Kernel(5, miss, (), (), (), ()))",
    "kernel key device huge": "expect(OverflowError, lambda: k.key(2**40, 5, 64))",
    "kernel key device str": "expect(TypeError, lambda: k.key('x', 5, 64))",
    "kernel insert empty token": "expect(ValueError, lambda: k.insert(b'', object(), INFO))",
    "kernel insert flag raises": "expect(ZeroDivisionError, lambda: k.insert(token, object(), INFO[:4] + (Raises(),) + INFO[5:]))",
    "kernel insert field raises": "expect(ZeroDivisionError, lambda: k.insert(token, object(), (Raises(),) + INFO[1:]))",
    "kernel insert field huge": "expect(OverflowError, lambda: k.insert(token, object(), (2**70,) + INFO[1:]))",
    "kernel insert wrong count": "expect(TypeError, lambda: k.insert(token))",
    "kernel launch without grid": "expect(TypeError, lambda: k.launch())",
    "bound launch made directly": "expect(TypeError, lambda: type(k[1])())",
    "bound launch new": "expect(TypeError, lambda: type(k[1]).__new__(type(k[1])))",
    # Launcher(factory, fallback)
    "launcher factory returns a non-kernel": textwrap.dedent(
        """
        launcher = n.Launcher(lambda fn: 5, miss)
        expect(TypeError, lambda: launcher(f, (1,), 5, 64))
        """),
    "launcher factory returns a spoof": textwrap.dedent(
        """
        class Spoof:
            __class__ = property(lambda self: n.Kernel)
        launcher = n.Launcher(lambda fn: Spoof(), miss)
        expect(TypeError, lambda: launcher(f, (1,), 5, 64))
        """),
    "launcher keyword arguments": "expect(TypeError, lambda: n.Launcher(miss, miss, extra=1))",
    # module functions
    "specialize flag raises": "expect(ZeroDivisionError, lambda: n.specialize(1, Raises(), True, True))",
    "stats reset raises": "expect(ZeroDivisionError, lambda: n.stats(Raises()))",
    "count_fallback not a str": "expect(TypeError, lambda: n.count_fallback(5))",
    "jit_getitem not a class": "expect(TypeError, lambda: n.jit_getitem(5))",
    "configure wrong count": "expect(TypeError, lambda: n.configure())",
    "configure tensor types not a tuple": "expect(TypeError, lambda: n.configure(5, (), None, None, None, None, None, None, None, None, (3, 6)))",
    "configure dtype object None": "expect(TypeError, lambda: n.configure((), ((None, 'fp32'),), None, None, None, None, None, None, None, None, (3, 6)))",
    "configure dtypes not a tuple": "expect(TypeError, lambda: n.configure((), 'fp32', None, None, None, None, None, None, None, None, (3, 6)))",
    "configure accessors of another type": textwrap.dedent(
        """
        # A method bound to a list would be called directly on every "tensor" (here: ints).
        access = (list.__dict__['__len__'], list.clear, list.copy, [])
        expect(ValueError, lambda: n.configure((int,), (), None, None, None, None, None, None, access, None, (3, 6)))
        """),
    "configure accessor returning another builtin": textwrap.dedent(
        """
        # Binds to a list's method whatever it is given: it must be called as Python would call it
        # (here: it is not callable), never through its C function with an int as the list.
        class Sneaky:
            def __get__(self, obj, cls=None):
                return [].clear
        access = (int.__dict__['real'], Sneaky(), Sneaky(), 0)
        n.configure((int,), ((5, 'fp32'),), None, None, None, None, None, None, access, None, (3, 6))
        expect(Exception, lambda: n.specialize(5, False, True, True))
        assert k.key(0, 5, 64) is None  # an int now reads as a "tensor", and fails to
        """),
}


def fake_libcuda_dir(tmp_path_factory):
    compiler = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
    if compiler is None:
        return None
    directory = tmp_path_factory.mktemp("fakecuda")
    subprocess.run([compiler, "-O2", "-shared", "-fPIC", "-o", str(directory / "libcuda.so.1"),
                    str(ROOT / "scripts" / "fake_libcuda.c")], check=True)
    return directory


@pytest.fixture(scope="module")
def fake_cuda(tmp_path_factory):
    directory = fake_libcuda_dir(tmp_path_factory)
    if directory is None:
        pytest.skip("no C compiler for the stand-in libcuda")
    return directory


def run_case(name, env):
    script = PRELUDE + "\n" + CASES[name]
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": python_path(), **env}, cwd=ROOT)
    assert result.returncode == 0, f"{name}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("name", list(CASES))
def test_bad_call_raises(name):
    # A GPU machine has a real libcuda; never let a test reach a launch of a made-up kernel there.
    run_case(name, {"CUDA_VISIBLE_DEVICES": ""})


@pytest.mark.parametrize("name", [name for name in CASES if name.startswith(("raw", "hit"))])
def test_bad_raw_launch_loop_raises_with_a_driver(name, fake_cuda):
    run_case(name, {"LD_LIBRARY_PATH": f"{fake_cuda}:{os.environ.get('LD_LIBRARY_PATH', '')}",
                    "CUDA_VISIBLE_DEVICES": ""})
