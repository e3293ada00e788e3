"""The report: the terminal tables, the chart, and the files under ``--out`` (results.json,
table.txt and the chart)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from .keys import KEY_IMPLS, NO_GPU_NOTE
from .messages import first_line


def table_lines(header: list[str], rows: list[list[str] | tuple[str, str]], left: int = 1,
                indent: str = "  ") -> list[str]:
    """Aligned columns: the first ``left`` columns left-aligned (names), the others right-aligned
    (figures). A ``(first, text)`` row keeps the first column aligned and lets ``text`` run on."""
    grid = [r for r in rows if isinstance(r, list)]
    widths = [max(len(r[i]) for r in [header, *grid]) for i in range(len(header))]
    widths[0] = max([widths[0]] + [len(r[0]) for r in rows])

    def line(row: list[str] | tuple[str, str]) -> str:
        if isinstance(row, tuple):
            return f"{indent}{row[0].ljust(widths[0])}  {row[1]}"
        cells = (c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
        return (indent + "  ".join(cells)).rstrip()

    return [line(header), *map(line, rows)]


def _v(value: Any) -> str:
    return "n/a" if value is None else str(value)


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return "" if value is None else fmt.format(value)


def format_launch_table(results: dict[str, Any]) -> str:
    # Plain ASCII ("us", not "µs") on the terminal: it must print under any locale.
    out: list[str] = []
    m, v, s = results["machine"], results["versions"], results["settings"]
    out.append(f"swiftlaunch bench: per-call host cost, us per call -- {_v(m.get('card'))}, "
               f"driver {_v(m.get('driver'))}, torch {v['torch']}, triton {v['triton']}, helion {_v(v['helion'])}, "
               f"swiftlaunch {_v(v['swiftlaunch'])}")
    header = ["stack", "cpu_only", "min", "x eager", "x floor", "wall+sync", "min", "x eager", "check"]
    for kernel, info in results["kernels"].items():
        out.append("")
        out.append(f"{kernel}: {info['title']}  (eager = {info['eager']})")
        rows: list[list[str] | tuple[str, str]] = []
        for c in (c for c in results["cells"] if c["kernel"] == kernel):
            if c["status"] == "skipped":
                rows.append((c["stack"], c["reason"]))
            elif c["status"] != "ok":
                rows.append((c["stack"], f"{c['status']}: {c['reason']}"))
            else:
                cpu, wall = c["cpu_only_us"] or {}, c["wall_sync_us"] or {}
                rows.append([c["stack"], _num(cpu.get("median")), _num(cpu.get("min")),
                             _num(c["ratio_to_eager"]["cpu_only"]), _num(c["ratio_to_floor"]["cpu_only"]),
                             _num(wall.get("median")), _num(wall.get("min")),
                             _num(c["ratio_to_eager"]["wall_sync"]), c["check"]])
        out.extend(table_lines(header, rows))
        stats = results.get("swiftlaunch_stats", {}).get(kernel)
        if isinstance(stats, dict) and stats.get("fallbacks"):
            out.append(f"  note: swiftlaunch stepped aside to Triton here: {stats['fallbacks']}")
    out.append("")
    out.append(f"cpu_only: {s['cpu_only_calls']} calls back to back, one sync, per call; wall+sync: a sync "
               f"after each of {s['wall_sync_calls']} calls. Median and min of {s['reps']} interleaved "
               f"repetitions after {s['warmup']} warm-up calls.")
    out.extend(results["notes"])
    out.append(f"The timing loop itself costs {results['loop_overhead_ns']:.0f} ns per call, included above.")
    return "\n".join(out)


def format_key_table(results: dict[str, Any]) -> str:
    cpu, m, v = results["cpu"], results["machine"], results["versions"]
    out = [*cpu["notes"], "",
           f"host-side key per call, ns -- {m['cpu']}, Python {m['python']}, torch {v['torch']}, "
           f"triton {v['triton']}, helion {_v(v['helion'])}, swiftlaunch {_v(v['swiftlaunch'])}"]
    header = ["kernel", "stack", "median ns", "min ns", "x triton"]
    rows: list[list[str] | tuple[str, str]] = []
    for r in cpu["rows"]:
        if r["status"] == "ok":
            rows.append([r["kernel"], r["stack"], _num(r["median_ns"], "{:.0f}"), _num(r["min_ns"], "{:.0f}"),
                         _num(r["ratio_to_triton"])])
        elif r["status"] == "error":  # skipped rows are summarised once below the table
            rows.append((r["kernel"], f"{r['stack']}: error: {r['reason']}"))
    out.extend(table_lines(header, rows, left=2))
    out.append("")
    out.append("stacks: " + "; ".join(f"{k} = {w}" for k, w in KEY_IMPLS.items()))
    skipped = {r["reason"] for r in cpu["rows"] if r["status"] == "skipped"}
    out.extend(f"skipped: {reason}" for reason in sorted(skipped))
    s = results["settings"]
    out.append(f"{s['cpu_only_calls']} calls per repetition, median and min of {s['reps']} interleaved "
               f"repetitions; the timing loop itself costs {results['loop_overhead_ns']:.0f} ns per call, "
               "included above.")
    out.append(f"Note: {NO_GPU_NOTE}.")
    return "\n".join(out)


#: A verdict's unit -> how its measured value and its limit print. The value has one decimal more
#: than the limit, so that a value just over the limit never reads as equal to it.
VERDICT_FORMATS: dict[str, tuple[str, str]] = {
    "x": ("{:.3f}", "<= {:.2f}"),
    "ns": ("{:.1f}", "<= {:.0f} ns"),
    "us": ("{:.2f}", "<= {:.1f} us"),
}


def format_targets_table(targets: dict[str, Any]) -> str:
    """The launch-overhead targets: one row per stack (vec_add, the tensor-argument kernels, the
    slope), then one line per target with its verdict. With no GPU, the one line that says they were
    skipped."""
    if "skipped" in targets:
        return f"{targets['skipped']}: skipped"
    cells = {(c["kernel"], c["stack"]): c for c in targets["cells"]}
    counts = targets["tensor_kernels"]
    out = [f"launch-overhead targets, us per call -- {targets['card']}: outputs allocated once, "
           "outside the timed call"]

    def figure(kernel: str, stack: str, key: str = "median") -> str:
        c = cells.get((kernel, stack))
        if c is None:
            return ""  # not a stack of this kernel
        if c["status"] == "ok" and c["cpu_only_us"]:
            return _num(c["cpu_only_us"][key])
        return c["status"] if key == "median" else ""  # the reason is listed below the verdicts

    header = ["stack", targets["kernel"], "(min)", *(f"{n} tensors" for n in counts.values()),
              "ns/extra tensor", "check"]
    rows: list[list[str] | tuple[str, str]] = []
    for stack in targets["stacks"]:
        mine = [c for (_, s), c in cells.items() if s == stack]
        checked = sum(c["check"] == "ok" for c in mine)
        rows.append([stack, figure(targets["kernel"], stack), figure(targets["kernel"], stack, "min"),
                     *(figure(kernel, stack) for kernel in counts),
                     _num(targets["ns_per_extra_tensor"].get(stack), "{:.0f}"),
                     "ok" if checked == len(mine) else f"{checked}/{len(mine)} ok"])
    out.extend(table_lines(header, rows))
    out.append("")
    verdict_rows: list[list[str] | tuple[str, str]] = []
    for v in targets["verdicts"]:
        value_format, limit_format = VERDICT_FORMATS[v["unit"]]
        verdict_rows.append([v["target"], _num(v["value"], value_format) or "-", limit_format.format(v["limit"]),
                             v["verdict"]])
    out.extend(table_lines(["target", "measured", "limit", "verdict"], verdict_rows))
    for c in targets["cells"]:
        if c["status"] != "ok":
            out.append(f"  {c['kernel']}/{c['stack']}: {c['status']}: {c['reason']}")
    stats = targets.get("swiftlaunch_stats")
    if isinstance(stats, dict) and stats.get("fallbacks"):
        out.append(f"  note: swiftlaunch stepped aside to Triton here: {stats['fallbacks']}")
    s = targets["settings"]
    out.append("")
    out.append(f"cpu_only: {s['cpu_only_calls']} calls back to back, one sync, per call; median and min of "
               f"{s['reps']} repetitions after {s['warmup']} warm-up calls, every cell of this table interleaved.")
    out.append(f"Ratios and differences are of {targets['kernel']} medians; ns/extra tensor is the least-squares "
               f"slope of the medians over {', '.join(map(str, counts.values()))} tensor arguments. raw_launch loops "
               f"in the Swift core; the other stacks include the Python timing loop, "
               f"{targets['loop_overhead_ns']:.0f} ns per call.")
    out.append("launcher: swiftlaunch.Launcher() called as Helion's host wrapper calls its _launcher; "
               "swiftlaunch_opts: fast(kernel)[grid] given the same arguments, launch options included.")
    return "\n".join(out)


def write_chart(path: Path, groups: list[str], series: list[str], value: Callable[[str, str], float | None],
                xlabel: str, title: str, label_fmt: str = "{:.1f}") -> str | None:
    """Horizontal grouped bars (one group per kernel, one bar per stack); returns why not, if not."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return "matplotlib is not installed: chart skipped"
    # Only the stacks that have at least one value get a bar colour and a legend entry.
    series = [s for s in series if any(value(g, s) is not None for g in groups)]
    if not series:
        return "nothing measured: chart skipped"
    height = 0.8 / len(series)
    fig = Figure(figsize=(10, 1.5 + 0.2 * len(groups) * len(series) + 0.3 * len(groups)))
    FigureCanvasAgg(fig)  # the Agg canvas: no display needed
    ax = fig.subplots()
    colors = [f"C{i % 10}" for i in range(len(series))]
    for j, (stack, color) in enumerate(zip(series, colors)):
        ys, xs = [], []
        for i, group in enumerate(groups):
            x = value(group, stack)
            if x is not None:
                ys.append(i + (j - (len(series) - 1) / 2) * height)
                xs.append(x)
        bars = ax.barh(ys, xs, height=height * 0.9, color=color, label=stack)
        ax.bar_label(bars, labels=[label_fmt.format(x) for x in xs], padding=2, fontsize=7)
    ax.set_yticks(range(len(groups)), labels=groups)
    ax.invert_yaxis()  # first kernel on top, as in the table
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.margins(x=0.12)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over a bar
    ax.grid(axis="x", alpha=0.3)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return None


def chart(results: dict[str, Any], out_dir: Path) -> tuple[Path, str | None]:
    """The chart for ``results`` under ``out_dir``: its path, and why it was not written, if not."""
    s = results["settings"]
    if results["mode"] == "gpu":
        path = out_dir / "launch_cost.png"
        cells = {(c["kernel"], c["stack"]): c for c in results["cells"]}

        def value(kernel, stack):
            c = cells.get((kernel, stack))
            return c["cpu_only_us"]["median"] if c and c["cpu_only_us"] else None

        m = results["machine"]
        title = f"per-call host cost, cpu_only median -- {_v(m.get('card'))}, driver {_v(m.get('driver'))}"
        why = write_chart(path, s["kernels"], s["stacks"], value, "µs per call (cpu_only, median)", title)
    else:
        path = out_dir / "key_cost.png"
        rows = {(r["kernel"], r["stack"]): r for r in results["cpu"]["rows"]}

        def value(kernel, stack):
            r = rows.get((kernel, stack))
            return r["median_ns"] if r else None

        title = f"host-side specialization / dispatch key, median (no GPU: {NO_GPU_NOTE})"
        why = write_chart(path, s["kernels"], list(KEY_IMPLS), value, "ns per call", title, "{:.0f}")
    return path, why


def write_report(results: dict[str, Any], tables: list[str], out_dir: Path, no_chart: str | None = None) -> None:
    """Print the tables with the targets last, and write results.json, table.txt and the chart under
    ``out_dir`` (no chart where ``no_chart`` says why not); ``results["chart"]`` names the chart."""
    table = "\n\n".join([*tables, format_targets_table(results["targets"])])  # the targets last
    try:
        chart_path, chart_skipped = (out_dir, no_chart) if no_chart else chart(results, out_dir)
    except Exception as e:  # noqa: BLE001 - the table and results.json matter more than the picture
        chart_path, chart_skipped = out_dir, f"chart failed: {type(e).__name__}: {first_line(e)}"
    results["chart"] = None if chart_skipped else chart_path.name
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out_dir / "table.txt").write_text(table + "\n")
    print(table)
    print()
    print(f"wrote {out_dir / 'results.json'}, {out_dir / 'table.txt'}"
          + (f", {chart_path}" if not chart_skipped else f" ({chart_skipped})"))
