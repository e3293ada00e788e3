"""The native tensor reader, without a GPU: set up and validated at configure time against torch's
own accessors, equal to them on every view kind and dtype, refusing what it must refuse, and the
accessor path taken whenever it is turned off."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import swiftlaunch
import tensor_views
from swiftlaunch.bench.kernels import add_kernel


@pytest.fixture(scope="module")
def reader(native):
    if os.environ.get("SWIFTLAUNCH_TENSOR_READER", "") == "python":
        pytest.skip("SWIFTLAUNCH_TENSOR_READER=python: the native reader is off in this process")
    status = swiftlaunch.stats()["tensor_reader"]
    assert status.startswith("native"), status
    return native


def test_configure_validated_the_native_reader(reader):
    status = swiftlaunch.stats()["tensor_reader"]
    assert "handle at +" in status and "probes" in status


@pytest.mark.parametrize("name,tensor", tensor_views.view_kinds("cpu"), ids=lambda v: v if isinstance(v, str) else "")
def test_reader_matches_torch_on_every_view_kind(reader, name, tensor):
    assert tensor_views.native_fields(reader.read_tensor(tensor)) == tensor_views.torch_fields(tensor), name


def test_reader_matches_torch_on_every_dtype(reader):
    codes = {}
    for name, tensor in tensor_views.dtype_probes("cpu"):
        read = reader.read_tensor(tensor)
        assert tensor_views.native_fields(read) == tensor_views.torch_fields(tensor), name
        codes.setdefault(read[2], set()).add(tensor.dtype)
    assert all(len(dtypes) == 1 for dtypes in codes.values()), codes  # one code names one dtype
    assert len(codes) >= 20


def test_reader_refuses_subclasses_and_non_tensors(reader):
    class Sub(torch.Tensor):
        pass

    for wrong in (torch.randn(3).as_subclass(Sub), 3, None, "x", torch.nn.UninitializedParameter()):
        with pytest.raises(TypeError, match="exact torch.Tensor"):
            reader.read_tensor(wrong)


def test_sparse_tensor_reads_fail_cleanly(reader):
    sparse = torch.randn(4, 4).to_sparse()
    with pytest.raises(RuntimeError, match="failed to read"):
        reader.read_tensor(sparse)
    # The key probe reads it as "not handled": the call would go to Triton.
    assert swiftlaunch.dispatch_key(add_kernel, sparse, sparse, sparse, 16, BLOCK=16) is None


def test_probe_requires_one_offset(native):
    x = torch.randn(3)
    library = os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so")
    with pytest.raises(RuntimeError, match="exactly one offset"):
        native.tensor_reader_probe(library, (torch.Tensor,), ((x, int(x._cdata) + 8),))
    with pytest.raises(TypeError):
        native.tensor_reader_probe(library, (torch.Tensor,), ((3, 4),))
    with pytest.raises(TypeError):
        native.tensor_reader_probe(library, "not a tuple", ())


def test_probe_needs_the_loaded_library(native):
    x = torch.randn(3)
    with pytest.raises(RuntimeError, match="is not loaded"):
        native.tensor_reader_probe("/nonexistent/libtorch_cpu.so", (torch.Tensor,), ((x, int(x._cdata)),))


def _run(code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=os.path.dirname(os.path.dirname(__file__)), timeout=300)


KEYS = """
    import torch, swiftlaunch
    from swiftlaunch.bench.kernels import add_kernel
    swiftlaunch.native_available()
    print(swiftlaunch.stats()["tensor_reader"])
    base = torch.arange(64, dtype=torch.float32)
    for args in [(base, base, base), (base[1:], base, base), (base.half(), base.half(), base.half()),
                 (base.view(torch.int32), base, base[4:])]:
        print(swiftlaunch.dispatch_key(add_kernel, *args, 16, BLOCK=16).hex())
"""


def test_both_readers_give_the_same_keys(native):
    native_run = _run(KEYS)
    python_run = _run(KEYS, SWIFTLAUNCH_TENSOR_READER="python")
    assert native_run.returncode == 0, native_run.stderr
    assert python_run.returncode == 0, python_run.stderr
    native_lines, python_lines = native_run.stdout.splitlines(), python_run.stdout.splitlines()
    assert native_lines[0].startswith("native"), native_lines[0]
    assert python_lines[0] == "python accessors (SWIFTLAUNCH_TENSOR_READER=python)"
    assert native_lines[1:] == python_lines[1:] and len(native_lines) == 5


def test_unknown_reader_setting_uses_the_accessors(native):
    run = _run("import swiftlaunch; swiftlaunch.native_available(); print(swiftlaunch.stats()['tensor_reader'])",
               SWIFTLAUNCH_TENSOR_READER="fast")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("python accessors (SWIFTLAUNCH_TENSOR_READER='fast'"), run.stdout


def test_older_torch_uses_the_accessors(native, monkeypatch):
    from swiftlaunch import _runtime, _torch_reader

    monkeypatch.setattr(torch, "__version__", "2.3.1")
    reader, status = _torch_reader.configure_reader(native, _runtime.triton_dtype_names())
    assert reader is None and status == "python accessors (torch 2.3.1 is older than 2.4)"


def test_a_disagreeing_reader_is_not_used(native, monkeypatch):
    from swiftlaunch import _runtime, _torch_reader

    real = native.read_tensor

    class Lying:
        def __getattr__(self, name):
            return getattr(native, name)

        def read_tensor(self, tensor):
            fields = list(real(tensor))
            fields[4] += 1  # one wrong dim is enough to turn the reader off
            return tuple(fields)

    reader, status = _torch_reader.configure_reader(Lying(), _runtime.triton_dtype_names())
    assert reader is None and status.startswith("python accessors (the native reader disagreed with torch")
