"""A release: a family's artifact folder with the operating point its evaluation selected, the
one folder a user runs (``kws detect --model <release>`` uses that point, not the built-in
defaults) and the one ``make demo`` prints.

The artifact is written before the evaluation that measures it, so the two meet here, in a folder
of their own: the artifact's files unchanged (the int8 graph, labels, front end, metrics) beside
``operating_point.json`` (threshold, smoothing, refractory, hop, and under ``selected`` how it
was chosen: its FA/h and FRR with their intervals, whether the target is established, whether the
point is usable).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from kws_assets.core.model.detect import DetectorOperatingPoint
from kws_assets.core.ship.export import OPERATING_POINT_FILE, read_operating_point


def write_release(
    artifact_dir: Path, operating_point_file: Path, target: Path
) -> DetectorOperatingPoint:
    """Fill ``target`` (an empty or new folder) with the files of ``artifact_dir`` and the
    operating point of ``operating_point_file``; returns that point.  A missing or malformed
    operating point, or an artifact folder that already carries a different one, is a
    ``ValueError`` naming the file: a release never ships a point it did not read."""
    if not operating_point_file.is_file():
        raise ValueError(f"no operating point at {operating_point_file}: run the evaluation")
    point = read_operating_point(operating_point_file)
    if point is None:  # a file always reads to a point or raises; kept for the type
        raise ValueError(f"{operating_point_file} holds no operating point")
    if not artifact_dir.is_dir():
        raise ValueError(f"no artifact folder at {artifact_dir}")
    shipped = artifact_dir / OPERATING_POINT_FILE
    if shipped.is_file() and shipped.read_bytes() != operating_point_file.read_bytes():
        raise ValueError(f"{artifact_dir} already ships another {OPERATING_POINT_FILE}")
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(artifact_dir.iterdir()):
        if item.is_dir():
            shutil.copytree(item, target / item.name, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target / item.name)
    shutil.copy2(operating_point_file, target / OPERATING_POINT_FILE)
    return point
