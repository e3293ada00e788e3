"""``python -m swiftlaunch bench``: what one kernel call costs the host, stack by stack.

With a CUDA GPU it runs a small kernel suite (``suite.py``, kernels in ``kernels.py``) through each
launch stack (``stacks.py``) and measures the host cost of a call (``timing.py``):

- ``cpu_only``: N calls back to back, then one ``torch.cuda.synchronize()``; time / N. This is what
  the host spends submitting work, provided the GPU keeps up.
- ``wall+sync``: a synchronize after every call (host cost plus GPU round trip), over fewer calls.

Warm-up calls come first, every stack's output is checked against eager PyTorch once before any
timing (``cells.py``), repetitions are interleaved across stacks (so drift in clocks or noisy
neighbours hits every stack alike), and each cell reports the median and min over repetitions plus
ratios to eager PyTorch and to the floor (``launch.py``).

After the suite, and alone with ``--targets-only``, it measures the launch-overhead targets and
prints them last (``targets.py``): vec_add with its output allocated once, outside the timed call,
through swiftlaunch (``fast`` and ``@swiftlaunch.jit``), Triton, ``CompiledKernel.run`` called
directly and the Swift core's raw ``cuLaunchKernelEx`` loop; the ratios swiftlaunch / compiled_run
(target <= 0.80) and swiftlaunch / raw_launch (<= 1.15); the cost of one extra tensor argument, the
least-squares slope over the 4-, 16- and 64-tensor kernels (swiftlaunch's at most 20 ns above the raw
loop's); and ``swiftlaunch.Launcher()`` called as Helion's host wrapper calls its ``_launcher``
against ``fast`` with the same arguments (at most 0.3 us more). Each target line says met or missed
from the figures measured in that run; missing a target does not change the exit status.

Without a GPU (or with ``--cpu``) the launch figures cannot be measured. It then measures the
host-side work that needs no GPU (``keys.py``): the per-call specialization and cache key (Triton's
binder + ``compute_cache_key``, Helion's ``Kernel.specialization_key`` and
``swiftlaunch.dispatch_key``) on CPU tensors, and says so. Missing pieces (Helion, the Swift core,
matplotlib) skip their cells or the chart with the reason; they never fail the run.

Output (``report.py``): the table on stdout, progress on stderr, and under ``--out``:
``results.json`` (machine, card, driver, versions, settings, every cell's samples, the targets under
``"targets"``; without a GPU ``{"skipped": ...}``), ``table.txt`` and a chart (``launch_cost.png``;
``key_cost.png`` without a GPU; none with ``--targets-only``). The exit status is 1 only when a stack
raised or gave a wrong result.

Importable: ``main(argv)`` is the command; ``run_launch_bench`` / ``run_targets_bench`` /
``run_key_bench`` return the results as a dict (the same one written to ``results.json``);
``format_launch_table`` / ``format_targets_table`` / ``format_key_table`` render them.
"""

from __future__ import annotations

from .cli import main
from .keys import run_key_bench
from .launch import run_launch_bench
from .report import format_key_table, format_launch_table, format_targets_table
from .targets import run_targets_bench

__all__ = [
    "format_key_table", "format_launch_table", "format_targets_table", "main", "run_key_bench",
    "run_launch_bench", "run_targets_bench",
]
