"""A stand-in for Frappe's `bench` CLI: records its argv, prints what bench prints, obeys a
control file (exit codes, extra lines, sleeps, a child process) so tests can make it fail."""

from __future__ import annotations

import json
import stat
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPT = r'''
import json, os, shutil, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).resolve().parent
control_file = HERE / "control.json"
control = json.loads(control_file.read_text()) if control_file.exists() else {}
def parse(argv):
    """(site, command): `execute` is named after its method (generate_keys, get_value)."""
    site, command, rest = (argv[1], argv[2], argv[3:]) if argv[0] == "--site" else (
        argv[1], argv[0], argv[2:])
    return site, rest[0].rsplit(".", 1)[-1] if command == "execute" else command

argv = sys.argv[1:]
site, command = parse(argv)
log = HERE / "calls.jsonl"
earlier = [parse(json.loads(line)["argv"]) for line in log.read_text().splitlines()
           ] if log.exists() else []
with open(log, "a") as calls:
    calls.write(json.dumps({"argv": argv, "cwd": os.getcwd(), "pid": os.getpid()}) + "\n")
wanted = control.get(command, {})
if earlier.count((site, command)) >= wanted.get("times", 10**9):
    wanted = {}  # failed (or slept) its number of times already; works from now on
sites = Path("sites")
site_dir = sites / site

def say(*lines):
    for line in lines:
        print(line, flush=True)

if wanted.get("child"):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    (HERE / "child.pid").write_text(str(child.pid))
say(*wanted.get("lines", []))
time.sleep(wanted.get("sleep", 0))
if "exit" in wanted:
    sys.exit(wanted["exit"])
if command != "new-site" and not site_dir.is_dir():
    say("Traceback (most recent call last):",
        f"frappe.exceptions.IncorrectSitePath: 404 Not Found: {site} does not exist")
    sys.exit(1)

if command == "new-site":
    say("Installing frappe...")
    sys.stdout.write("Updating DocTypes for frappe        : [=====     ] 50%\r")
    sys.stdout.write("Updating DocTypes for frappe        : [==========] 100%\n")
    say("\x1b[32mInstalling erpnext...\x1b[0m", "*** Scheduler is disabled ***")
    site_dir.mkdir(parents=True)
    (site_dir / "site_config.json").write_text("{}")
    say(f"Current Site set to {site}")
elif command == "generate_keys":
    say("WARN: a deprecation warning", json.dumps({"api_secret": "standin-secret"}))
elif command == "get_value":
    say(json.dumps({"api_key": "standin-key"}))
elif command == "list-apps":
    say("frappe     15.51.0 version-15", *wanted.get("apps", ["erpnext    15.49.1 version-15"]))
elif command == "backup":
    backups = site_dir / "private" / "backups"
    backups.mkdir(parents=True, exist_ok=True)
    prefix = f"20261123_101500-{site.replace('.', '_')}"
    db_file = backups / f"{prefix}-database.sql.gz"
    conf = backups / f"{prefix}-site_config_backup.json"
    db_file.write_bytes(b"x" * 4321)
    conf.write_bytes(b"y" * 94)
    say(f"Backup Summary for {site} at 2026-11-23 10:15:00.123456",
        f"Config  : ./{conf.relative_to(sites)} 94.0B",
        f"Database: ./{db_file.relative_to(sites)} 4.2KiB",
        f"Backup for Site {site} has been successfully completed")
elif command == "drop-site":
    archived = Path("archived", "sites")
    archived.mkdir(parents=True, exist_ok=True)
    shutil.move(str(site_dir), str(archived / site))
    say(f"Moving site to archive...")
'''


@dataclass
class StandInBench:
    path: Path  # the executable
    directory: Path  # BENCH_DIR

    def control(self, **commands: dict[str, Any]) -> None:
        """What each command does, e.g. {"new-site": {"exit": 1, "lines": [...], "sleep": 5,
        "child": True, "times": 1}}: exit code, lines printed, a sleep, a child process, and
        for how many calls (then it behaves)."""
        (self.path.parent / "control.json").write_text(json.dumps(commands))

    def reset(self) -> None:
        """Forget earlier calls and controls (the stand-in of a worker serves many tests)."""
        for name in ("control.json", "calls.jsonl", "child.pid"):
            (self.path.parent / name).unlink(missing_ok=True)

    def calls(self) -> list[dict[str, Any]]:
        log = self.path.parent / "calls.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]

    def child_pid(self) -> int | None:
        marker = self.path.parent / "child.pid"
        return int(marker.read_text()) if marker.exists() else None

    def make_site(self, site: str) -> None:
        (self.directory / "sites" / site).mkdir(parents=True)
        (self.directory / "sites" / site / "site_config.json").write_text("{}")


def install(root: Path) -> StandInBench:
    tools, bench_dir = root / "standin", root / "frappe-bench"
    tools.mkdir()
    (bench_dir / "sites").mkdir(parents=True)
    script = tools / "bench"
    script.write_text(f"#!{sys.executable}\n{SCRIPT}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return StandInBench(script, bench_dir)


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie waiting for its parent to reap it does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")
