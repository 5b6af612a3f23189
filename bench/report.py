"""docs/BENCHMARKS.md from the results of `python -m bench.run` (artifacts/bench/results.json)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COMMAND = "make bench  (= .venv/bin/python -m bench.run)"

# Written by hand from the runs they name; check them against the tables after a new run.
FINDINGS = """
## Findings of issue 12 (2026-12-04 runs, written by hand)

- **Status reads.** Run of 2026-12-04 20:16 UTC (section 1b): the shipped code answered
  `GET …/status` at 394 req/s for 3.76 ms of server CPU per request; this code at 1,627
  req/s for 0.72 ms, beside 1,240 req/s for the bare two-query floor. What changed: one
  statement authenticates, authorizes and reads (it was three, through the ORM), on an
  autocommit engine without a pre-ping (the pre-ping alone was a round trip and ~0.1 ms of
  CPU per request), verified tokens kept per process (~0.03 ms), no cookie session opened
  per request. Section 1's own loop (the Python load generator on the same cores, run of
  2026-12-04 02:43) agrees: 1,430 req/s at saturation on 2x8, p99 2.9 ms at 200 req/s.
- **The 304 goal (5,000 req/s) is met from memory: 8,206 req/s** (range 6,058-8,624) for
  0.20 ms of CPU per request. A 304 that reads PostgreSQL (the same code with
  `STATUS_MEMORY_SECONDS=0`) is at 1,551 req/s and 0.73 ms, and gunicorn with Flask
  answering a bare 304 with no database and no token (*ceiling*) at 6,223: no 304 that
  goes through Flask could have reached the goal on this machine reliably (the ceiling's
  median was 1,940 in the 02:43 run, a noisier hour). The memory answers in a WSGI
  middleware in front of Flask (`api/not_modified.py`) what the database confirmed within
  5 s, kept true by one Redis subscription per web process (`live/feed.py`) that hears every
  run change and every access taken away; docs/SECURITY.md section 8 says what it trusts.
  By design each web worker reads a polled workspace from PostgreSQL again once its 5 s are
  up (not counted in this run).
- **Streams no longer touch the API.** With 5,000 streams open on the live process, the
  status p99 on the API was 2.7 ms; with 200 on the shipped code's web process, none of
  1,000 status reads was answered within 10 s. A committed change reached 99 % of 5,000
  streams in 86 ms (goal 1 s). The live process against gevent (section 5): about half the
  memory at 5,000 streams, two thirds of the fan-out time, a third of the CPU per fan-out.

## Findings (analysis of the 2026-11-23 runs, written by hand)

Before: the full run of 2026-11-23 09:54 UTC (orchestration, burst, cost) and the API and
profile run of 10:20 UTC. After: the full run of 11:19 UTC above, with the three changes
listed below. The before runs started at load averages of 3.7-6.8 (other engineers'
suites on the machine), the after run at 0.1, so part of every gain is a quieter machine;
the paired A/B of the step path further down is the fairer figure for that change.

| figure (2 workers x 8 threads unless said) | before | after |
|---|---|---|
| status req/s at saturation, 50 connections | 405.8 | 389.0 |
| status req/s, 10 connections | 299.2 | 462.8 |
| status p99 at 200 req/s (2x8 / 4x4) | 14.2 / 14.7 ms | 13.3 / 13.1 ms |
| start req/s, 10 connections (2x8 / 4x4) | 59.0 / 86.2 | 104.2 / 81.5 |
| start req/s, 50 connections (2x8 / 4x4) | 82.8 / 70.9 | 82.8 / 64.0 |
| start p99 at 200 req/s (2x8 / 4x4) | 8549 / 11839 ms | 8559 / 11842 ms |
| FULL_POS run through the worker | 254.5 ms | 185.9 ms |
| overhead per step / bare chain hop | 19.6 / 2.96 ms | 13.0 / 2.40 ms |
| ratio overhead per step / bare hop | 6.6x | 5.4x |
| SQL statements per status read / per start | 5 / 20 | 4 / 18 |
| SQL statements per FULL_POS run (step tasks) | 149 | 95 |
| SQL statements per step task | 14-23 | 9-15 |

Every goal still **FAILS**: status ≥ 1000 req/s (best 463), status p99 ≤ 10 ms at
200 req/s (13 ms), start p99 ≤ 25 ms at 200 req/s (seconds: start serves 64-104 req/s, so
an offered 200 req/s only queues), per-step cost ≤ 2x a bare hop (5.4x).

- **Status reads are CPU-bound in Python, not in PostgreSQL.** A read now costs 4.8 ms of
  CPU in-process (5.0 before) for 4 statements; at ~400-460 req/s the two cores, shared
  with the load generator, are full. The profile (`artifacts/bench/profile-status.txt`)
  splits the view between the run-and-steps query (~35 %), the user and tenant lookups of
  `access.py` (~30 %) and marshmallow (`RunStatusSchema()` built and dumped per request,
  ~20 %). The 1,000 req/s goal needs about 1.5-2 ms of CPU per read: a plain serializer
  and a cheaper user/tenant check are what is left. The p99 at 200 req/s (13 ms) is
  queueing behind that CPU.
- **Start is bounded by ~25-30 ms of CPU per request** (18 statements, one commit, the
  chain publish, then the status read of the new run). 10 connections on 2x8 went from 59
  to 104 req/s; at 50 connections, and on 4x4, it is unchanged within noise (64-83 req/s),
  so an offered 200 req/s still cannot be met and the open-loop p99 is the queue.
- **Orchestration overhead per step: 13.0 ms against a 2.4 ms bare hop (5.4x).** A paired
  A/B run of the step-path change alone (`--only orchestration`, 15 rounds, the code before
  and after alternated twice on the same machine minutes apart) gave FULL_POS runs of
  222 and 205 ms before against 190 and 179 ms after, overhead per step 16.1 / 15.0 ms
  against 13.3 / 12.2 ms, ratio 5.7-6.1x against 5.0x: about 2.5-3 ms less per step. What
  is left is SQLAlchemy ORM CPU more than round trips: claim and complete each cost about
  3 ms in-process (lock the tenant's and the run's rows, load the run's nine steps, flush
  an event and two updates, commit, publish the live update), plus about 0.4 ms per
  per-site lock (0.5-0.7 ms before this change, measured side by side). The goal needs
  the whole per-step cost near 5 ms including the hop, which these ORM transitions cannot
  reach on this machine; rewriting them as Core statements would duplicate the state
  machine in `transitions.py` and is not worth it.
- The heartbeat thread started per step costs ~0.1 ms (start + join, measured): left as it
  is. The engine client already keeps one pooled `requests.Session` per process and engine
  URL; in these benchmarks every engine call still opens a TCP connection because the
  simulator's server answers HTTP/1.0 and closes it (the direct path pays the same, so it
  does not show in the overhead per step). `requests` also re-reads the proxy environment
  on every call (~0.25 ms of CPU); not changed, as it would change how proxies are found.
- **Burst**: 1 to 4 worker processes gives ~2x (38 → 77 runs/min), not 4x: two cores, and
  `create_company` serialized per site by the advisory lock. prefork and threads pools give
  the same throughput within noise; the threads pool uses one ~129 MiB process where
  prefork x4 uses 125 + 4 x 111 MiB. Unchanged from before within noise.
- **At full size (1,000 tenants, section 3b)** prefork x4 kept its 40-tenant pace: 76.4
  runs/min, all 1,000 `COMPLETED` in 786 s, worker RSS unchanged (~112 MiB per process).
  The first attempt at this size found a real bug, not a slowness: `create_company` looked
  for a free abbreviation with one engine call per candidate (ABC, ABC2, … ABC99) under the
  site's company lock and gave up after 99, so after 7 minutes 12 runs had failed with
  "every abbreviation from BP4071 to BP407199 is taken" and only 200 companies existed
  (the run was stopped). It now fetches the taken abbreviations in one call and has no
  upper bound; the rerun made 708 companies in its first 4 minutes (200 in 7 before).
- **The engine cap works**: with `ENGINE_MAX_CONCURRENCY` = 1, 2, 4 throughput follows the
  cap (39 → 67 → 96 runs/min with 8 threads available), 78 % of the ceiling at cap 1. It
  costs two Redis round trips per engine call (~0.3 ms).

### What changed because of these figures

- **Status in one query** (`provisioner/api/provisioning.py`, by another engineer): the
  latest run and its steps are read once (`selectinload`), no `expire_all` and re-select:
  5 → 4 statements per read, ~0.3 ms less CPU.
- **Start in one transaction** (`provisioner/orchestration/runs.py`, by another engineer):
  the audit row is written in the declare transaction, one commit instead of two; a start
  request (which also answers with the run's status) went from 20 to 18 statements.
- **Step claim and complete** (this change), 149 → 95 statements per FULL_POS run:
  - `transitions.lock_run` takes the tenant's row lock found through the run in one
    statement, then locks the run's row with its tenant and steps joined in a second (was:
    select the tenant id, lock the tenant, lock the run, lazy-load the steps; and a third
    reload of the tenant when a run started or ended). Same lock order, tenant then run;
    the steps are read after the tenant's lock is held.
  - `execution.claim` hands the step a detached copy of the tenant's row it already read,
    so `context.build` no longer reads the tenant again after the claim's commit (which
    also left a transaction open during the whole step body).
  - `locks.advisory_lock` takes a free per-site lock with `pg_try_advisory_lock` on an
    autocommit connection and releases it the same way: 2 statements and no BEGIN/COMMIT
    per lock instead of 3 statements and two transactions; a busy lock is still waited for
    with `lock_timeout` (set for that wait only).
- gunicorn: 4 workers x 4 threads against the shipped 2 x 8 gives no gain in this run
  (status equal at 50 connections; 2 x 8 better for status at 10 connections and for
  start at 10 and 50), so gunicorn.conf.py stays as it is.
"""


# Written by hand from the 2026-12-02 runs of `--only verification` (four runs, load averages
# 0.9 to 12 at the start: other engineers' suites); check it against the tables after a run.
VERIFICATION_FINDINGS = """
**Findings (written by hand, 2026-12-02).** Every run: 11 engine calls per verification, all
GETs (one per kind of document; `tests/unit/test_verify.py` checks that none is read twice):
the goal of at most 12 is met; 17 checks.
- **Time per verification** 227-293 ms from the worker starting it to the outcome recorded,
  of which 152-157 ms is the engine answering at a real site's latencies; the rest (70-135
  ms, more on a loaded machine) is ours: the claim and the record transactions (the
  tenant's row lock, the outcome, the deliveries, the pruning) and the HTTP client.
- **The trickle**: 10,000 workspaces made at once are verified at 6.9 a minute on average,
  never more than `VERIFY_PER_SITE` (10) a minute on one site; the shared site's 9,000
  take 6.25 a minute (69 reads a minute, about one a second), a site of its own with 100
  workspaces at most 2. One site can take 14,400 verifications a day at the defaults: a
  shared site with more workspaces than that needs `VERIFY_PER_SITE` raised (or a longer
  `VERIFY_INTERVAL`), which `deferred` in the tick's result shows.
- **The tick** in the steady state costs 140-400 ms and 52 statements, of which choosing
  (the due-and-busy reads over 10,000 tenants and `pick`) is 20-50 ms; the rest is the 7
  `request`s (tenant lock, insert, commit, publish). With a fleet that was never verified,
  the tick reads all 10,000 rows (choosing 150-300 ms) and starts 110 verifications (10 per
  site) in 1.5-5 s, i.e. about 12-40 ms per request (the publish alone is about 7 ms): a
  fleet older than verification drains in 900 ticks, 15 hours, on its busiest site.
- **`GET /metrics`** reads the 10,000 latest verifications' tallies (300-630 ms): the one
  figure here that grows with the number of workspaces; at a hundred thousand it would be
  worth summing the tallies in PostgreSQL (`jsonb_each`) instead of in Python.
"""


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    out = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (scripts in `bench/`, raw figures in "
        "`artifacts/bench/results.json`, process logs and profiles in `artifacts/bench/`). "
        "Timings are never asserted in tests; this report is where they live.",
        "",
        f"- **Date** of the last run: {m['date']}; it took {r.get('elapsed_s', '?')} s "
        "(each section says when it was measured).",
        f"- **Machine**: {m['cores']} cores, {m['memory']}, CPU `{m['cpu']}`, "
        f"kernel {m['kernel']}; Python {m['python']}, PostgreSQL {m['postgres']}, "
        f"Redis {m['redis']}.",
        f"- **Load average when the last run started**: {m['load']}.",
        f"- **Command**: `{COMMAND}`; this run: `{r.get('argv', '')}`.",
        "",
        "> **Noise.** This 2-core machine was shared with other engineers running test suites "
        "(integration workers, PostgreSQL and Redis clients) during the run, so absolute figures "
        "are pessimistic and vary run to run. Compare figures *within* one run: each table's "
        "rows were measured in the same session, interleaved where possible, and every API "
        "figure is the median of the repeats stated.",
        "",
    ]
    for part, fn in (("api", _api), ("status", _status), ("orchestration", _orchestration),
                     ("burst", _burst),
                     ("burst_full", _burst_full), ("cost", _cost),
                     ("profile", _profile), ("live", _live),
                     ("verification", _verification)):  # fmt: skip
        if part in r:
            section = fn(r[part], r)
            if r[part].get("measured"):
                section[1:1] = ["", f"_Measured {r[part]['measured']}._"]
            out += section
    out += FINDINGS.strip("\n").splitlines()
    return "\n".join(out) + "\n"


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _api(a: dict[str, Any], _r: dict[str, Any]) -> list[str]:
    from bench.api import _medians, verdicts

    a = {**a, "medians": _medians(a["runs"])}

    out = [
        "## 1. API latency and throughput (gunicorn, real PostgreSQL)",
        "",
        f"Each figure: median of {a['repeats']} repeats of {a['seconds']:g} s (after 1 s of "
        "warm-up) against gunicorn on a scratch database `provisioner_bench_<rand>` (created "
        "and dropped by the run). Load from `bench/loadgen.py` (asyncio, HTTP/1.1 keep-alive), "
        "in the same machine. *Closed loop*: N connections back to back; req/s is the "
        "saturation throughput. *Open loop*: 200 req/s scheduled at constant rate, latency "
        "measured from each request's scheduled send time (client queueing is counted). "
        "Every `start` is a real 202 on a fresh tenant; its chain goes to a bench queue no "
        "worker consumes, purged after each measurement. Access log on (as in production).",
        "",
    ]
    for label, cmd in a["commands"].items():
        out.append(f"- {label}: `{cmd}`")
    out.append("")
    for label, tests in a["medians"].items():
        out.append(f"**{label}**")
        out.append("")
        rows = [[name, t["req_per_s"], t.get("achieved_req_per_s", "-"), t["p50_ms"],
                 t["p95_ms"], t["p99_ms"], t["non_2xx"], t["errors"],
                 t.get("repeats_used", a["repeats"])]
                for name, t in tests.items()]  # fmt: skip
        out += _table(["test", "req/s", "answered req/s", "p50 ms", "p95 ms", "p99 ms",
                       "non-2xx", "conn. errors", "repeats used"], rows)  # fmt: skip
        out.append("(req/s: completed per second for closed loops, the offered rate for open "
                   "loops; answered req/s: open-loop answers / time to the last answer, which "
                   "falls below the offered rate when the server cannot keep up. non-2xx and "
                   "conn. errors are totals over all repeats; a repeat with non-2xx answers "
                   "is left out of the medians when a clean one exists.)")  # fmt: skip
        out.append("")
    verdict = verdicts(a["medians"])
    goals = list(next(iter(verdict.values())))
    out.append("**Goals** (per gunicorn configuration; the first is the shipped default):")
    out.append("")
    out += _table(["goal", *verdict], [[g, *(verdict[c][g] for c in verdict)] for g in goals])
    return out


def _status(st: dict[str, Any], _r: dict[str, Any]) -> list[str]:
    """Section 1b: the status read of the shipped code, of this code and of the floors."""
    m = st["medians"]
    out = [
        "## 1b. `GET …/status`: the shipped code, this code and a bare floor (issue 12)",
        "",
        f"`bench/status.py`. Four gunicorn servers with the shipped settings (2 workers x 8 "
        f"threads, gthread, access log on), loaded in turn by `wrk -t2 -c{st['connections']}` "
        f"for {st['seconds']:g} s, {st['repeats']} repeats interleaved (medians), each request "
        f"cycling over {st['workspaces']} workspaces with a run, the admin's token. *shipped*: "
        f"the code of `{st['baseline_ref']}` (the end of stage 1) in a tree and venv of its own "
        "(`git archive`, its own `requirements.txt`), on its own scratch database filled by its "
        "own `bench/context.py`. *now*: this checkout, its 304s from the web process's memory "
        "once a read confirmed them (`api/not_modified.py`); *now-db*: the same with "
        "`STATUS_MEMORY_SECONDS=0`, each 304 read from PostgreSQL. *floor*: `bench/floor.py`, "
        "a bare Flask + Flask-SQLAlchemy app reading a run and its nine steps in two indexed "
        "queries, no authentication. *ceiling*: "
        "the same bare app answering 304 with no database and no token (what gunicorn and Flask "
        "cost alone). CPU per request: user + system time of the server's processes (master "
        "and workers) over the measurement / requests answered; PostgreSQL's time is not in it.",
        "",
    ]
    for label, command in st["commands"].items():
        out.append(f"- {label}: `{command}`")
    out.append("")
    names = {
        "shipped 200": "shipped code: 200",
        "now 200": "**this code: 200**",
        "now 304": "**this code: 304** (`If-None-Match` with the current ETag; from memory)",
        "now-db 304": "this code, STATUS_MEMORY_SECONDS=0: 304 (each one reads PostgreSQL)",
        "floor 200": "floor: two queries, 200",
        "ceiling 304": "ceiling: Flask alone, 304, no database",
    }

    def spread(key: str) -> str:
        rates = [r["req_per_s"] for r in st["runs"][key]]
        return f"{min(rates):.0f}-{max(rates):.0f}"

    rows = [[names.get(k, k), f["req_per_s"], spread(k), f["p50_ms"], f["p99_ms"],
             f["cpu_ms_per_request"], f["non_2xx_3xx"], f["socket_errors"]]
            for k, f in m.items()]  # fmt: skip
    out += _table(["server: answer", "req/s", "req/s range", "p50 ms", "p99 ms",
                   "CPU ms per request", "non-2xx/3xx", "socket errors"], rows)  # fmt: skip
    before, after = m["shipped 200"]["cpu_ms_per_request"], m["now 200"]["cpu_ms_per_request"]
    out.append(f"Per-request CPU of a status read: **{before} ms before, {after} ms after** "
               f"(304: {m['now 304']['cpu_ms_per_request']} ms).")  # fmt: skip
    out.append("")
    out += _table(["goal", "verdict"], [[g, v] for g, v in st["verdicts"].items()])
    return out


def _orchestration(o: dict[str, Any], _r: dict[str, Any]) -> list[str]:
    ok = o["ratio"] is not None and o["ratio"] <= 2
    out = [
        "## 2. Orchestration overhead per step",
        "",
        f"{o['runs']} rounds, interleaved, each: one FULL_POS run through a worker against "
        "the simulator at zero latency (`queued_at` → `finished_at` in the database), one "
        "bare Celery chain of nine no-op tasks (`bench/noop.py`) on the same broker, queue and "
        "worker (publish → last link ran), and the nine steps' engine calls made directly in "
        "the driver process (no Celery, no database; like `tests/unit/conftest.py`'s "
        f"StepRunner). Medians. Worker: `{o['worker_command']}`.",
        "",
    ]
    out += _table(
        ["figure", "ms"],
        [
            ["FULL_POS run through the worker", o["full_run_ms"]],
            ["  of which step bodies (sum of `duration_ms`)", o["full_run_step_bodies_ms"]],
            ["same engine calls made directly", o["direct_ms"]],
            ["bare chain of 9 no-op tasks", o["bare_chain_ms"]],
            ["**overhead per step** = (run - direct) / 9", o["overhead_per_step_ms"]],
            ["  of which outside the step body = (run - bodies) / 9", o["framework_per_step_ms"]],
            ["**bare chain hop** = bare chain / 9", o["bare_hop_ms"]],
            ["**ratio** overhead per step / bare hop", o["ratio"]],
        ],
    )
    verdict = "PASS" if ok else "FAIL"
    out.append(f"Goal per-step cost ≤ 2x a bare hop: **{verdict}** ({o['ratio']}x). "
               f"Engine calls per FULL_POS run: {o['engine_calls_per_run']}.")  # fmt: skip
    out.append("")
    rows = [[n, s["direct_ms"], s["in_worker_ms"]] for n, s in o["steps"].items()]
    out += _table(["step", "direct ms", "in worker (step body) ms"], rows)
    return out


def _burst(b: dict[str, Any], r: dict[str, Any]) -> list[str]:
    calls = (r.get("orchestration") or {}).get("engine_calls_per_run") or 32
    out = [
        "## 3. Burst: many tenants started at once (simulator at 50 ms per engine call)",
        "",
        f"{b['tenants']} tenants per configuration (scaled down from 1,000 to keep "
        "`make bench` near 15 minutes), all started at once from the driver; time from the "
        "first publish to the last run's end. One shared engine site, so `create_company` "
        "is serialized by the per-site advisory lock whatever the worker count.",
        "",
    ]
    out += _burst_table([x for x in b["results"] if not x["cap"]])
    caps = [x for x in b["results"] if x["cap"]]
    if caps:
        out += [
            "**Per-engine concurrency cap** (`ENGINE_MAX_CONCURRENCY`, Redis semaphore in "
            f"`provisioner/engine/throttle.py`), {caps[0]['tenants']} tenants, "
            f"`--pool={caps[0]['pool']} --concurrency={caps[0]['concurrency']}`. With "
            f"{calls} engine calls per run at 50 ms, a cap of c allows at most "
            f"c * 60 / ({calls} * 0.05) runs/min:",
            "",
        ]
        out += _table(
            ["cap", "runs", "time s", "runs/min", "ceiling runs/min", "of ceiling", "final states"],
            [[x["cap"], x["tenants"], x["seconds"], x["runs_per_min"],
              round(x["cap"] * 60 / (calls * 0.05), 1),
              f"{x['runs_per_min'] / (x['cap'] * 60 / (calls * 0.05)):.0%}",
              _statuses(x["statuses"])] for x in caps],
        )  # fmt: skip
    out.append("Commands: " + "; ".join(f"`{x['command']}`" for x in b["results"][:1] + caps[:1]))
    out.append("")
    return out


def _burst_full(b: dict[str, Any], _r: dict[str, Any]) -> list[str]:
    [x] = b["results"]
    out = [
        f"## 3b. Burst at full size: {b['tenants']} tenants at once",
        "",
        "The same burst at the size the goal names, on one pool only (the widest of the "
        "table above), because it takes about a quarter of an hour on its own: "
        "`.venv/bin/python -m bench.run --only burst_full` (not part of a plain `make bench`; "
        "`BENCH_FULL_BURST` sets the size).",
        "",
    ]
    return [*out, *_burst_table([x]), f"Command: `{x['command']}`", ""]


def _burst_table(results: list[dict[str, Any]]) -> list[str]:
    rows = []
    for x in results:
        rss = x["rss_mib"]
        rss_txt = f"{rss['main']} + {rss['children']}" if rss["children"] else f"{rss['main']}"
        rows.append([x["pool"], x["concurrency"], x["tenants"], x["seconds"], x["runs_per_min"],
                     _statuses(x["statuses"]), rss_txt])  # fmt: skip
    return _table(["pool", "concurrency", "runs", "time to all done s", "runs/min",
                   "final states", "RSS MiB (main + pool)"], rows)  # fmt: skip


def _statuses(s: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(s.items()))


def _cost(c: dict[str, Any], _r: dict[str, Any]) -> list[str]:
    s, st, rd = c["status_read"], c["steps"], c["redis"]
    out = [
        "## 4. Cost",
        "",
        "SQL statements counted with a SQLAlchemy `before_cursor_execute` listener on every "
        "engine (the session's and the status read's `reads`; the session's `pool_pre_ping` "
        "ping is not a cursor execute and is not counted: add one round trip per request/task "
        "outside the status read; nor are BEGIN and COMMIT, which the status read does not "
        "send).",
        "",
        f"- `GET …/status`: **{s['status_queries']:g} statement"
        f"{'' if s['status_queries'] == 1 else 's'}** per read (median of "
        f"{s['reads']}); `POST …/start`: **{s['start_queries']:g}**.",
        f"- Per step task, inside a worker (`bench/probe.py`, {st['runs']} FULL_POS runs): "
        f"**{st['queries_per_run']:g} statements per run** in total.",
        "",
    ]
    out += _table(
        ["step task", "statements"], [[k, v] for k, v in sorted(st["queries_per_step"].items())]
    )
    out += [
        f"- Worker RSS (prefork, 2 processes): idle main {st['rss_idle_mib']['main']} MiB, "
        f"pool {st['rss_idle_mib']['children']} MiB; after the runs main "
        f"{st['rss_after_runs_mib']['main']} MiB, pool {st['rss_after_runs_mib']['children']} MiB. "
        "(The burst table above has RSS per configuration.) Command: "
        f"`{st['worker_command']}`.",
        f"- Redis per queued run: `INFO memory` used_memory grew by "
        f"{rd['used_memory_delta_bytes']} bytes for {rd['runs']} queued FULL_POS runs "
        f"({rd['messages']} messages: one per chain) = **{rd['bytes_per_run']} bytes per run**; "
        "the queue list itself (`MEMORY USAGE`) is "
        f"{rd['queue_list_bytes_per_run']} bytes per run.",
    ]
    if "throttle" in c:
        t = c["throttle"]
        out.append(
            f"- Engine throttle overhead: {t['calls']} `ping` calls to the zero-latency simulator, "
            f"cap off {t['off_us']} µs/call, cap on {t['on_us']} µs/call "
            f"(+{t['on_us'] - t['off_us']:.0f} µs: two Redis round trips per call)."
        )
    out.append("")
    return out


def _profile(p: dict[str, Any], _r: dict[str, Any]) -> list[str]:
    out = [
        "## Profile (pyinstrument 5.1.3)",
        "",
        f"{p['requests']} requests of each route through the Flask test client in the driver "
        "process, on the scratch PostgreSQL database (no HTTP server): wall and CPU per request. "
        "Full call trees: " + ", ".join(f"`{p[k]['profile']}`" for k in ("status", "start")) + ".",
        "",
    ]
    out += _table(
        ["route", "wall ms/request", "CPU ms/request"],
        [[k, p[k]["wall_ms_per_request"], p[k]["cpu_ms_per_request"]] for k in ("status", "start")],
    )
    return out


def _live(lv: dict[str, Any], _r: dict[str, Any]) -> list[str]:
    st, old, gv = lv["status_open_200"], lv["shipped"], lv.get("gevent")
    failed = gv.pop("error", None) if gv else None
    gv = None if failed else gv
    n = lv["streams"]
    out = [
        "## 5. Live updates: the `live` process under many streams",
        "",
        "One `python -m provisioner.live` on a private `redis-server` (restarted for the last "
        "row), streams held by `bench/sse.py` in the driver process on the same 2 cores, "
        "all on one real workspace (`bench/live.py`). Each fan-out is a real change of its run "
        "(cancel, then continue, by turns) committed by the driver with its live update sent as "
        "the API's and the workers' are; its status document is ~3 KB; the time runs from the "
        "moment the change began (its transaction and commit included) to each stream's frame. "
        "Beside it, the candidate it was chosen against: "
        "Flask's stream route on gunicorn with one gevent worker (`bench/gevent_sse.py`, one "
        "Redis subscription and a bounded queue per stream, no ticket check: its best case), "
        "the same streams and frames. The shipped code has no live process: its streams are "
        "held by its web process's threads (2x8); its row opens that many streams on it, then "
        f"the same status reads (`{old['command']}`).",
        "",
    ]

    def both(key: str) -> list[Any]:
        return [lv[key], gv[key] if gv else "-"]

    out += _table(
        ["figure", "live process", "gevent candidate"],
        [
            ["RSS idle / 1,000 / " + f"{n:,} streams MiB",
             *(f"{x['rss_idle_mib']} / {x['rss_1000_mib']} / {x[f'rss_{n}_mib']}" if x else "-"
               for x in (lv, gv))],
            ["streams open after the fan-outs", *both("open")],
            [f"committed change reaches 99 % / 100 % of {n:,} streams (median of 5) ms",
             *(f"{x['fanout_p99_ms']} / {x['fanout_max_ms']}" if x else "-" for x in (lv, gv))],
            ["server CPU per fan-out ms", *both("fanout_cpu_ms")],
            [f"server CPU over 30 s idle with {n:,} streams s", *both("idle_cpu_s_per_30s")],
        ],
    )  # fmt: skip
    if gv or failed:
        out.append(f"Candidate: `{gv['command']}`." if gv else f"The candidate failed: {failed}")
        out.append("")
    out += _table(
        ["figure", "value"],
        [
            [f"`GET …/status` at 200 req/s while the {n:,} streams are open: p50 / p99 ms "
             "(open loop from a process of its own; shipped 2x8 gunicorn)",
             f"{st['p50_ms']} / {st['p99_ms']} ({st['errors']} errors)"],
            [f"  the same beside {old['streams']} streams on the **shipped code**'s web process: "
             f"streams answered; status answered / errors (10 s timeout), p99 ms",
             f"{old['streams_answered']}; {sum(old['statuses'].values())} / {old['errors']}, "
             f"{old['p99_ms'] if old['statuses'] else 'none answered'}"],
            [f"Redis restarted under {lv['restart_streams']:,} streams: all have the state "
             "again after s", lv["restart_all_state_again_s"]],
            ["streams still open after the restart", lv["restart_open"]],
        ],
    )  # fmt: skip
    return out


def _verification(v: dict[str, Any], _r: dict[str, Any]) -> list[str]:
    one, sched, trickle = v["per_verification"], v["schedule"], v["trickle"]
    interval_h = sched["interval_s"] / 3600
    ticks_per_interval = sched["interval_s"] / 60
    per_tick = sched["tenants"] / ticks_per_interval
    reads = one["reads_median"]
    out = [
        "## 6. Verification (`bench/verification.py`)",
        "",
        f"**One verification.** {one['tenants']} FULL_POS workspaces (demo items on) "
        f"provisioned through a worker in {one['provisioned_s']} s against the simulator with a "
        "warm real site's latencies (`--latency real`: a GET ~13 ms), then verified "
        f"{one['verifications']} times one at a time through the same worker "
        f"(`{one['worker_command']}`). Outcomes: {_statuses(one['statuses'])}.",
        "",
    ]
    out += _table(
        ["figure", "value"],
        [
            ["checks per verification (documents)", one["checks"]],
            ["**engine calls per verification** (median / max)",
             f"**{reads:g}** / {one['reads_max']} (goal ≤ 12)"],
            ["  the same counted in the simulator's call log (max)",
             one["reads_in_call_log_max"]],
            ["  all of them GETs", "yes" if one["only_gets"] else "**no**"],
            ["**time per verification**, worker start → recorded (median / max)",
             f"**{one['started_to_checked_ms']} ms** / {one['started_to_checked_max_ms']} ms"],
            ["  of which the engine answering (its call log's durations)",
             f"{one['engine_ms']} ms"],
            ["  asked → recorded (queue hop, claim, reads, record)",
             f"{one['asked_to_checked_ms']} ms"],
        ],
    )  # fmt: skip
    out += [
        f"**The schedule at {sched['tenants']:,} workspaces.** Every {interval_h:g} h "
        f"(`VERIFY_INTERVAL`), a beat tick a minute: {sched['tenants']:,} / "
        f"{ticks_per_interval:g} ticks = **{per_tick:.1f} verifications per tick** on "
        f"average, **{per_tick * reads / 60:.1f} engine reads per second** over all sites "
        f"({reads:g} reads each). One site takes at most `VERIFY_PER_SITE` = "
        f"{sched['per_site']} per tick (those still under way count), so at most "
        f"{sched['per_site'] * reads:g} reads per minute per site and "
        f"{sched['per_site'] * ticks_per_interval:,.0f} verifications per site per interval; "
        "`ENGINE_MAX_CONCURRENCY` still caps the calls in flight. The fleet: "
        f"{sched['sites']['shared']:,} tenants on the shared site, "
        f"{len(sched['sites']['own'])} sites of their own with {sched['sites']['own'][0]} each.",
        "",
        f"Replayed over {trickle['ticks']:,} ticks (two intervals) for {sched['tenants']:,} "
        "workspaces made at once (the schedule's own `due_at` and `pick`, each verification "
        "done within its tick):",
        "",
    ]
    out += _table(
        ["figure", "value"],
        [
            ["verifications started", f"{trickle['verifications']:,}"],
            ["per tick, all sites: mean / max", f"{trickle['per_tick_mean']} / "
             f"{trickle['per_tick_max']}"],
            ["per tick, shared site: mean / max", f"{trickle['shared_per_tick_mean']} / "
             f"{trickle['shared_per_tick_max']}"],
            ["per tick, one own site (100 tenants): max", trickle["own_site_per_tick_max"]],
            ["ticks with none on the shared site", trickle["idle_ticks_shared"]],
        ],
    )  # fmt: skip
    never, steady, metrics = sched["never_verified"], sched["steady"], sched["metrics"]
    out += [
        f"The tick's own cost with {sched['tenants']:,} tenants in the scratch database "
        "(PostgreSQL; median of 5 ticks a simulated minute apart, SQL statements counted as in "
        "section 4; *choosing* is the due-and-busy reads and `pick` alone, the rest is one "
        "`request` per verification started: tenant lock, insert, commit, publish):",
        "",
    ]
    out += _table(
        ["state", "due at the first tick", "started per tick", "tick ms (median / max)",
         "of which choosing ms", "statements per tick"],
        [
            ["never verified (a fleet older than the feature: all overdue)",
             f"{never['due_at_first_tick']:,}", never["started_per_tick"],
             f"{never['tick_ms']} / {never['tick_ms_max']}", never["choice_ms"],
             never["statements"]],
            ["steady (each verified once in the last interval, evenly)",
             steady["due_at_first_tick"], steady["started_per_tick"],
             f"{steady['tick_ms']} / {steady['tick_ms_max']}", steady["choice_ms"],
             steady["statements"]],
        ],
    )  # fmt: skip
    out += [
        f"`GET /metrics` with {sched['tenants']:,} latest verifications: "
        f"{metrics['scrape_ms']} ms, {metrics['statements']:g} statements.",
        "",
        *VERIFICATION_FINDINGS.strip("\n").splitlines(),
        "",
    ]
    return out


if __name__ == "__main__":
    results = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(render(results))
