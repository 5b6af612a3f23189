"""`make bench`: every benchmark on a scratch database, then docs/BENCHMARKS.md.

    .venv/bin/python -m bench.run [--only api,status,orchestration,burst,cost,profile,live,
                                          verification] [--quick]
    .venv/bin/python -m bench.run --only burst_full   # 1,000 tenants at once (BENCH_FULL_BURST)

Sizes come from the environment: BENCH_REPEATS (3), BENCH_SECONDS (4), BENCH_TENANTS (40),
BENCH_GUNICORN ("2x8,4x4"). Raw results go to artifacts/bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import LOG_DIR, ROOT, machine, scratch_database
from bench.context import bench_env, setup

PARTS = ("api", "status", "orchestration", "burst", "cost", "profile", "live", "verification")
EXTRA_PARTS = ("burst_full",)  # ~13 min on its own, so only with --only


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"parts: {', '.join(PARTS + EXTRA_PARTS)}"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the scripts")
    parser.add_argument("--report", default=str(ROOT / "docs" / "BENCHMARKS.md"))
    args = parser.parse_args(argv)
    parts = [p for p in args.only.split(",") if p]
    quick = args.quick
    repeats = int(os.environ.get("BENCH_REPEATS", "1" if quick else "3"))
    seconds = float(os.environ.get("BENCH_SECONDS", "2" if quick else "4"))
    saved = LOG_DIR / "results.json"
    # With --only, the other parts' figures of the previous run are kept (and say when).
    results: dict[str, Any] = (
        json.loads(saved.read_text()) if saved.exists() and args.only != ",".join(PARTS) else {}
    )
    for part in parts:
        results.pop(part, None)
    results.update({"machine": machine(), "argv": " ".join(sys.argv)})
    print(f"machine: {results['machine']}", flush=True)
    began = time.monotonic()
    with scratch_database() as url:
        os.environ.update(bench_env(url))
        bench = setup()
        for part in parts:
            results[part] = _measure(part, bench, quick=quick, repeats=repeats, seconds=seconds)
    results["elapsed_s"] = round(time.monotonic() - began, 1)
    for part in parts:
        if isinstance(results.get(part), dict):
            results[part]["measured"] = (
                f"{results['machine']['date']}, load average at start {results['machine']['load']}"
            )
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(results, indent=2, default=str))
    from bench import report

    Path(args.report).write_text(report.render(results))
    print(f"wrote {args.report} in {results['elapsed_s']} s", flush=True)
    return 0


def _measure(part: str, bench: Any, *, quick: bool, repeats: int, seconds: float) -> Any:  # noqa: PLR0911
    """One part of the benchmarks (imported late: each part pulls in what it drives)."""
    print(f"part: {part}", flush=True)
    if part == "api":
        from bench import api

        return api.run(bench, repeats=repeats, seconds=seconds)
    if part == "status":
        from bench import status

        return status.run(bench, repeats=repeats, seconds=seconds)
    if part == "orchestration":
        from bench import orchestration

        return orchestration.run(bench, runs=5 if quick else 15)
    if part == "burst":
        from bench import burst

        return burst.run(
            bench, tenants=int(os.environ.get("BENCH_TENANTS", "10" if quick else "40"))
        )
    if part == "burst_full":
        from bench import burst

        return burst.run_full(bench, tenants=int(os.environ.get("BENCH_FULL_BURST", "1000")))
    if part == "cost":
        from bench import cost

        return cost.run(bench, queued=50 if quick else 200)
    if part == "profile":
        from bench import profile

        return profile.run(bench, requests=50 if quick else 200)
    if part == "live":
        from bench import live

        return live.run(
            bench, streams=1000 if quick else 5000, restart_streams=500 if quick else 1000
        )
    if part == "verification":
        from bench import verification

        return verification.run(bench, tenants=2 if quick else 4, rounds=2 if quick else 3)
    raise SystemExit(f"unknown part {part!r}: one of {', '.join(PARTS + EXTRA_PARTS)}")


if __name__ == "__main__":
    raise SystemExit(main())
