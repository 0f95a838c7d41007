"""requirements.lock against pyproject.toml and the installed packages: drift is a test failure.

``make install`` installs with ``-c requirements.lock``; when someone upgrades a package by hand or
changes a range in pyproject.toml without ``make lock``, these tests name the package."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import kws_assets

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
SELF = canonicalize_name("kws_assets")


def read_lock(path: Path = LOCK) -> dict[str, str]:
    """{canonical name: pinned version} of a ``name==version`` lock file (comments skipped)."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version and " @ " not in line, (
            f"{path.name}:{number}: {raw!r} is not name==version; regenerate with `make lock`"
        )
        key = canonicalize_name(name.split("[", 1)[0])
        assert key not in pins, f"{path.name}:{number}: {name} pinned twice"
        pins[key] = version.strip()
    return pins


def direct_requirements() -> list[Requirement]:
    """Requirements pyproject.toml names itself: dependencies and every optional extra."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return [r for r in map(Requirement, lines) if canonicalize_name(r.name) != SELF]


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def test_every_direct_dependency_is_pinned_within_its_range():
    pins = read_lock()
    problems = []
    for req in direct_requirements():
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None:
            problems.append(f"{req.name}: not in {LOCK.name}")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req.name}=={pinned} is outside pyproject's {req}")
    assert not problems, "; ".join(problems) + " -> run `make lock`"


def test_installed_direct_dependencies_match_the_lock():
    pins = read_lock()
    drifted = []
    for req in direct_requirements():
        version = installed_version(req.name)
        pinned = pins.get(canonicalize_name(req.name))
        if version is None or pinned is None:  # an extra not installed here; pinning checked above
            continue
        if version != pinned:
            drifted.append(f"{req.name}: installed {version}, locked {pinned}")
    assert not drifted, (
        "; ".join(drifted) + " -> reinstall with `make install` (or refresh the "
        "lock with `make lock` and commit it)"
    )


def test_lock_reader_rejects_what_pip_freeze_would_not_write(tmp_path):
    good = tmp_path / "good.lock"
    good.write_text("# header\nTorch==2.11.0\nmoto[server]==5.1.0  # comment\n")
    assert read_lock(good) == {"torch": "2.11.0", "moto": "5.1.0"}
    for bad in ("numpy>=1\n", "numpy==1\nNumPy==2\n", "x @ file:///tmp/x\n"):
        path = tmp_path / "bad.lock"
        path.write_text(bad)
        with pytest.raises(AssertionError):
            read_lock(path)


def test_the_version_has_one_source():
    version = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert kws_assets.__version__ == version
    assert not (ROOT / "setup.cfg").exists() or "version" not in (ROOT / "setup.cfg").read_text()
    init = (ROOT / "kws_assets" / "__init__.py").read_text()
    assert version not in init, "kws_assets/__init__.py must read the version, not restate it"
