"""`make demo`'s program on its embedded defaults: SQLite, fakeredis, no servers needed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_provisions_a_workspace_end_to_end(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CELERY_", "DATABASE_", "ERPNEXT_", "REDIS_"))
    }
    done = subprocess.run(
        [sys.executable, "-m", "provisioner.demo", "--once", "--latency", "zero",
         "--state-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert ": COMPLETED (100%)" in out, out[-3000:]
    for step in ("check_engine", "create_company", "create_demo_items", "open_pos_session"):
        assert f"✓ {step}" in out
    assert "API          http://127.0.0.1:" in out
    assert "Flower       http://127.0.0.1:" in out
    assert "Traceback" not in out
