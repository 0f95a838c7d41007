"""``.ci/system-deps``, which ``make demo`` and ``make test`` run first: as root it installs the
missing Debian packages (the TTS engines and voices, the real dev sets, what the tests start);
as anyone else it prints the one apt-get line and stops, so the demo never goes on silently with
fewer engines.  ``dpkg``, ``id`` and ``apt-get`` are shims on ``PATH`` here: nothing is
installed."""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "system-deps"
ENGINE_PACKAGES = {
    "flite",
    "festival",
    "festvox-kallpc16k",
    "festvox-kdlpc16k",
    "festvox-us-slt-hts",
}


def _shim(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _run(tmp_path: Path, missing: set[str], uid: int, *args: str) -> subprocess.CompletedProcess:
    shims = tmp_path / "bin"
    shims.mkdir(exist_ok=True)
    pattern = "|".join(sorted(missing)) or "^$"
    # dpkg -s NAME: "not installed" for the missing ones
    _shim(shims, "dpkg", f'[[ "$2" =~ ^({pattern})$ ]] && exit 1; exit 0')
    _shim(shims, "id", f"echo {uid}")
    _shim(shims, "apt-get", f'echo "$@" >> "{tmp_path}/apt-get.log"')
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": f"{shims}:{os.environ['PATH']}"},
    )


def _packages() -> set[str]:
    block = SCRIPT.read_text().split("PACKAGES=(\n", 1)[1].split("\n)\n", 1)[0]
    return {line.split()[0] for line in block.splitlines() if line.split()}


def test_the_engines_and_voices_are_among_the_packages() -> None:
    assert _packages() >= ENGINE_PACKAGES


def test_nothing_missing_is_one_line_and_success(tmp_path: Path) -> None:
    proc = _run(tmp_path, set(), uid=1000)
    assert proc.returncode == 0, proc.stderr
    assert "all" in proc.stdout and "installed" in proc.stdout
    assert not (tmp_path / "apt-get.log").exists()


def test_without_root_it_stops_with_the_exact_command(tmp_path: Path) -> None:
    proc = _run(tmp_path, {"flite", "festvox-kdlpc16k"}, uid=1000)
    assert proc.returncode == 2
    line = re.search(r"sudo (apt-get install [^\n]+)", proc.stderr)
    assert line, proc.stderr
    assert line.group(1).split()[-2:] == ["flite", "festvox-kdlpc16k"]
    assert not (tmp_path / "apt-get.log").exists()


def test_as_root_it_installs_exactly_what_is_missing(tmp_path: Path) -> None:
    proc = _run(tmp_path, {"festival", "ktuberling-data"}, uid=0)
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "apt-get.log").read_text().splitlines()
    assert calls[0].startswith("update")
    assert calls[1].split()[-2:] == ["festival", "ktuberling-data"]


@pytest.mark.parametrize("uid", [0, 1000])
def test_check_only_reports_and_installs_nothing(tmp_path: Path, uid: int) -> None:
    proc = _run(tmp_path, {"flite"}, uid, "--check")
    assert proc.returncode == 2
    assert "flite" in proc.stderr
    assert not (tmp_path / "apt-get.log").exists()


def test_make_demo_and_make_test_run_it_first() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo", "demo-real", "test"):
        rule = re.search(rf"^{re.escape(target)}:(.*)$", makefile, re.MULTILINE)
        assert rule and "system-deps" in rule.group(1).split(), target
