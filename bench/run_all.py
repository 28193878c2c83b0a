"""Run every benchmark and write bench/results/results.json and bench/results/results.md.

    python bench/run_all.py [--quick] [--only NAME ...]

The gateway benchmarks (issue 8: "a gateway that adds almost nothing to the broker's own
latency") are modules with a `run(quick) -> dict` function:

    bench_cost             broker calls and SQL statements per place and per order book
    bench_place_overhead   a SINGLE place through the gateway versus straight to the broker
    bench_book             order book throughput, 8 clients, gateway versus the broker
    bench_burst            100 alerts at the same instant: none lost, paced at 10/s
    bench_startup          start time and worker memory with a 150,000-instrument master
    bench_server_settings  waitress threads, gunicorn workers x threads: place latency, book throughput
    bench_rate_storage     the place's rate-limit hits: limits' stock memory storage vs the swept one

and the earlier ones are run through their `main(argv)` with --out:

    bench_instruments      instrument master load, index and lookup
    bench_sandbox          sandbox trigger engine

Every gateway benchmark drives the real server (`python run.py`) or the production app against
the fake Upstox from tests/fakes (run in a process of its own). --quick shortens each (fewer
requests, shorter runs, smaller masters) to check that everything works; the full run takes
several minutes on two cores, about four of them in bench_server_settings.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _support import machine, row  # noqa: E402

RESULTS = HERE / "results"
GATEWAY_BENCHES = ["bench_cost", "bench_place_overhead", "bench_book", "bench_burst", "bench_startup",
                   "bench_server_settings", "bench_rate_storage"]


def _instruments(quick: bool) -> dict:
    import bench_instruments

    argv = ["--rows", "30000", "--repeat", "1", "--lookups", "20000", "--cli-runs", "2"] if quick else []
    postgres = os.environ.get("BENCH_POSTGRES_URL")
    data = _main_json(bench_instruments.main, argv + (["--postgres", postgres] if postgres else []))
    ratio = data["load_over_read"]
    rows = [
        row("gzip + json.load alone (s)", data["read_json_s"]),
        row("load_master into SQLite (s)", data["load_master_s"]),
        row("load / read", ratio, "<= 3.0x", ratio <= 3.0),
    ]
    for prefix, label in (("cli", "SQLite"), ("cli_pg", "PostgreSQL")):
        if f"{prefix}_load_s" in data:
            cli_ratio = data[f"{prefix}_load_over_read"]
            rows += [
                row(f"`run.py instruments load` vs a bare read, fresh processes, {label}: median (s)",
                    f"{data[f'{prefix}_load_s']} vs {data[f'{prefix}_read_s']}"),
                row(f"`run.py instruments load` / bare read, {label}", cli_ratio, "<= 3.0x", cli_ratio <= 3.0),
            ]
    rows += [
        row("index build (s) / index memory (MB)", f"{data['index_build_s']} / {data['index_mb']}"),
        row("lookup (us)", data["lookup_us"]),
    ]
    return {"title": f"Instrument master ({data['rows']:,} synthetic rows)", "rows": rows, "data": data}


def _sandbox(quick: bool) -> dict:
    import bench_sandbox

    argv = (["--gtts", "2000", "--instruments", "200", "--ticks", "20000", "--naive-ticks", "1000",
             "--single-ticks", "500"] if quick else [])
    data = _main_json(bench_sandbox.main, argv)
    speedup = data["speedup_same_ticks"]
    rows = [
        row("indexed engine, memory (ticks/s)", data["indexed_ticks_per_s"]),
        row("indexed versus plain scan, same ticks", speedup, f">= {bench_sandbox.MIN_SPEEDUP:.0f}x",
            speedup >= bench_sandbox.MIN_SPEEDUP),
    ]
    if "sqlite_places_per_s" in data:
        rows += [
            row("SandboxBroker + SQLite: places/s", data["sqlite_places_per_s"]),
            row("SandboxBroker + SQLite: ticks/s, 1 per call / batched",
                f"{data['sqlite_ticks_per_s_single']} / {data['sqlite_ticks_per_s_batched']}"),
            row("restart: rebuild from SQLite (s)", data["sqlite_restart_reload_s"]),
        ]
    return {"title": f"Sandbox triggers ({data['gtts']:,} GTTs, {data['ticks']:,} ticks)", "rows": rows, "data": data}


def _main_json(main, argv: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-out-") as tmp:
        out = Path(tmp) / "out.json"
        code = main([*argv, "--out", str(out)])
        if code:
            raise RuntimeError(f"exited with {code}")
        return json.loads(out.read_text())


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _gateway_bench(name: str):
    def run(quick: bool) -> dict:
        return importlib.import_module(name).run(quick)
    return run


BENCHES = {name: _gateway_bench(name) for name in GATEWAY_BENCHES}
BENCHES.update({"bench_instruments": _instruments, "bench_sandbox": _sandbox})


def _markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Benchmark results",
        "",
        (f"{'Quick run' if report['quick'] else 'Full run'} of `python bench/run_all.py"
         f"{' --quick' if report['quick'] else ''}`, {report['generated_at']}, {report['total_seconds']:.0f} s."),
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB memory; Python {m['python']}; {m['os']}.",
        "",
        "The 1-minute load average before and after each benchmark is listed below the table: the machine may be",
        "shared, and every timing here moves with what else runs on it.",
        "",
        "| benchmark | metric | result | target | status |",
        "|---|---|---|---|---|",
    ]
    for name, bench in report["benchmarks"].items():
        if "error" in bench:
            lines.append(f"| {name} | (failed) | {bench['error'].splitlines()[-1][:120]} | | ERROR |")
            continue
        for i, r in enumerate(bench["rows"]):
            first = f"**{name}**" if i == 0 else ""
            lines.append(f"| {first} | {r['metric']} | {r['value']} | {r['target']} | {r['status']} |")
    lines += ["", "## Benchmarks", ""]
    for name, bench in report["benchmarks"].items():
        load = bench.get("load_average_1min") or [None, None]
        lines.append(f"- **{name}** ({bench.get('seconds', 0):.0f} s, load average {load[0]} -> {load[1]}): "
                     f"{bench.get('title', '')}")
        for note in bench.get("notes", []):
            lines.append(f"  - {note}")
    missed = [(name, r) for name, bench in report["benchmarks"].items() for r in bench.get("rows", [])
              if r["status"] == "MISSED"]
    lines += ["", f"Targets missed: {len(missed)}" + (":" if missed else ".")]
    lines += [f"- {name}: {r['metric']} = {r['value']} (target {r['target']})" for name, r in missed]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, to check everything works")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHES), help="run only these")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    names = [name for name in BENCHES if not args.only or name in args.only]
    report = {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": args.quick,
        "machine": machine(),
        "benchmarks": {},
    }
    started = time.perf_counter()
    failed = 0
    for name in names:
        print(f"=== {name}{' (quick)' if args.quick else ''}", flush=True)
        t0 = time.perf_counter()
        load_before = _loadavg()
        try:
            result = BENCHES[name](args.quick)
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others' results
            failed += 1
            result = {"error": traceback.format_exc()}
            print(result["error"], file=sys.stderr, flush=True)
        result["seconds"] = round(time.perf_counter() - t0, 1)
        result["load_average_1min"] = [load_before, _loadavg()]  # before, after: other work on the machine
        report["benchmarks"][name] = result
        for r in result.get("rows", []):
            print(f"  {r['metric']:<58} {r['value']!s:>16}  {r['target']:<12} {r['status']}", flush=True)
        for note in result.get("notes", []):
            print(f"  note: {note}", flush=True)
        print(f"  ({result['seconds']:.0f} s)", flush=True)
    report["total_seconds"] = round(time.perf_counter() - started, 1)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (args.out_dir / "results.md").write_text(_markdown(report))
    print(f"wrote {args.out_dir / 'results.json'} and {args.out_dir / 'results.md'} "
          f"in {report['total_seconds']:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
