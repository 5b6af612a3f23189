"""The project builds as one installable package that carries everything it runs with."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "provisioner"
# Files the service reads at run time (not imported): they must be in the wheel.
DATA = ("*.json", "*.html", "*.js", "*.css", "*.ini", "*.mako")


def test_the_wheel_holds_every_module_migration_and_page_file(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("provisioner-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())

    wanted = {
        str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts
    }
    for pattern in DATA:
        wanted |= {str(p.relative_to(ROOT)) for p in PACKAGE.rglob(pattern)}
    assert wanted - names == set()
    assert "provisioner/migrations/versions/0001_core_schema.py" in names
    assert not any(name.startswith(("tests/", "bench/")) for name in names)
