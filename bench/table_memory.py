"""Peak memory of one MFCC table build against its size: the streaming path in isolation.

Each size runs in a fresh process that imports everything, warms the path up on a few clips,
then builds the table for ``n`` clips (the bench's WAV files cycled under distinct clip ids) to a
staged Parquet file with the feature cache on.  The process reports its peak RSS
(``getrusage``) before and after the build; the growth is what the build itself needed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

KIB = 1024
WARMUP_CLIPS = 16


def _table(paths: list[str], n: int):
    import polars as pl

    return pl.DataFrame(
        {
            "clip_id": [f"clip{i:07d}" for i in range(n)],
            "uri": [paths[i % len(paths)] for i in range(n)],
            "label": ["yes"] * n,
            "split": ["train"] * n,
            "speaker": ["s"] * n,
            "source": ["bench"] * n,
        }
    )


def measure_build(paths_file: Path, n: int, out: Path) -> int:
    """One size, in this process (run it in a fresh one: peak RSS is per process)."""
    from kws_assets.core.families.mfcc_dscnn import table_front_end
    from kws_assets.core.features.mfcc import FeatureSpec
    from kws_assets.core.features.table import FeatureCache, stage_feature_table
    from kws_assets.settings import AudioSettings, FeatureSettings

    paths = json.loads(paths_file.read_text())
    spec = FeatureSpec.from_settings(FeatureSettings(), AudioSettings())
    with tempfile.TemporaryDirectory(prefix="kws-bench-mem-") as tmp:
        folder = Path(tmp)
        warm, _ = stage_feature_table(
            _table(paths, WARMUP_CLIPS), table_front_end(spec), folder / "staging"
        )
        warm.discard()
        table = _table(paths, n)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        staged, stats = stage_feature_table(
            table,
            table_front_end(spec),
            folder / "staging",
            cache=FeatureCache.for_front_end(folder / "cache", table_front_end(spec)),
        )
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        size = staged.path.stat().st_size
        staged.discard()
    out.write_text(
        json.dumps(
            {
                "clips": n,
                "maxrss_before_build_kib": before,
                "maxrss_after_build_kib": after,
                "table_bytes": size,
                "featurized": stats.featurized,
                "seconds": stats.seconds,
            }
        )
    )
    return 0


def run_table_memory_bench(paths: list[Path], sizes: list[int]) -> dict:
    """Peak RSS of table builds of each size, each in a fresh process."""
    root = Path(__file__).resolve().parents[1]
    runs = []
    with tempfile.TemporaryDirectory(prefix="kws-bench-mem-") as tmp:
        paths_file = Path(tmp) / "paths.json"
        paths_file.write_text(json.dumps([str(p) for p in paths]))
        for n in sizes:
            out = Path(tmp) / f"result_{n}.json"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.table_memory",
                    "--paths",
                    str(paths_file),
                    "--clips",
                    str(n),
                    "--out",
                    str(out),
                ],
                check=True,
                cwd=root,
                stdout=subprocess.DEVNULL,
            )
            runs.append(json.loads(out.read_text()))
    return summarize_table_memory(runs)


def summarize_table_memory(runs: list[dict]) -> dict:
    """Growth of each build, and the largest build's peak RSS and table size against the
    smallest's."""
    for run in runs:
        run["build_growth_kib"] = run["maxrss_after_build_kib"] - run["maxrss_before_build_kib"]
    first, last = runs[0], runs[-1]
    return {
        "runs": runs,
        "size_ratio": last["clips"] / first["clips"],
        "peak_rss_ratio": last["maxrss_after_build_kib"] / first["maxrss_after_build_kib"],
        "table_bytes_ratio": last["table_bytes"] / first["table_bytes"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=Path, required=True)
    parser.add_argument("--clips", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    return measure_build(args.paths, args.clips, args.out)


if __name__ == "__main__":
    sys.exit(main())
