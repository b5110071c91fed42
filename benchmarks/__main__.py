"""Run the benchmarks: ``python -m benchmarks [--quick] [--only NAME] [--json PATH]``.

Every ``benchmarks/bench_*.py`` module exposes ``run(quick: bool) -> dict``; each returned dict maps a figure's
name to a number (or a small dict with ``value``, ``unit`` and ``target``). The runner prints one table and
writes everything, with a description of the machine, to a JSON file. A run with ``--only`` updates its own
benchmarks in that file and keeps the latest figures of the others (``runs`` says when each was measured).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return info


def discover(only: list[str] | None) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if only:
        names = [n for n in names if any(o in n for o in only)]
    return names


def _fmt(value: Any) -> tuple[str, str, str]:
    if isinstance(value, dict):
        v = value.get("value")
        unit = str(value.get("unit", ""))
        target = str(value.get("target", ""))
    else:
        v, unit, target = value, "", ""
    if isinstance(v, float):
        text = f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    elif isinstance(v, int):
        text = f"{v:,}"
    else:
        text = str(v)
    return text, unit, target


def _previous(path: Path, fresh: dict[str, Any]) -> dict[str, Any]:
    """The figures already in ``path`` (other benchmarks' latest), under this run's machine description."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return fresh
    if not isinstance(old, dict) or not isinstance(old.get("benchmarks"), dict):
        return fresh
    fresh["benchmarks"].update(old["benchmarks"])
    runs = old.get("runs")
    if isinstance(runs, dict):
        fresh["runs"].update(runs)
    return fresh


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--only", action="append", help="run only benchmarks whose name contains this")
    parser.add_argument("--json", default="benchmarks/results/latest.json", help="where to write the figures")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE.parent))
    out = Path(args.json)
    results: dict[str, Any] = {"machine": machine(), "quick": args.quick, "benchmarks": {}, "runs": {}}
    if args.only:
        # A partial run updates its own benchmarks and keeps the others' latest figures, each with when and how
        # they were measured.
        results = _previous(out, results)
    run_info = {"date": results["machine"]["date"], "quick": args.quick}
    rows: list[tuple[str, str, str, str, str]] = []
    failed = False
    for name in discover(args.only):
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            figures = module.run(quick=args.quick)
        except Exception as exc:  # report and go on: one broken benchmark should not hide the others
            failed = True
            results["benchmarks"][name] = {"error": f"{type(exc).__name__}: {exc}"}
            rows.append((name, "ERROR", f"{type(exc).__name__}: {exc}", "", ""))
            continue
        results["benchmarks"][name] = figures
        results["runs"][name] = run_info
        for key, value in figures.items():
            rows.append((name, key, *_fmt(value)))

    widths = [max(len(r[i]) for r in [("benchmark", "figure", "value", "unit", "target"), *rows]) for i in range(5)]
    header = ("benchmark", "figure", "value", "unit", "target")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.rjust(w) if i == 2 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    tmp.replace(out)  # a run stopped half-way leaves the previous file whole
    print(f"\nmachine: {results['machine']}\nwritten: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
