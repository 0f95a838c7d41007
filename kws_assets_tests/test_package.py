"""Importing the package lets torch's OpenMP threads sleep between kernels (OMP_WAIT_POLICY), and
an explicit setting in the environment wins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = (
    "import kws_assets, os, torch\n"
    "print(os.environ['OMP_WAIT_POLICY'])\n"
    "torch.set_num_threads(2)\n"
    "print(float(torch.ones(64, 64).sum()))\n"
)


def _probe(env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout.split()


def test_torch_threads_wait_passively_unless_told_otherwise() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _probe(env) == ["PASSIVE", "4096.0"]
    assert _probe({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == ["ACTIVE", "4096.0"]
