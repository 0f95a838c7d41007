"""The ``kws`` command line: classify audio files with a trained model artifact folder.

    kws classify --model DIR a.wav b.wav

prints one JSON object per file on stdout, in argument order:
``{"path": ..., "label": ..., "score": ..., "scores": {label: probability}}``, or
``{"path": ..., "error": ...}`` for a file that cannot be read.  The exit status is 0 when every
file was classified, 1 when any file failed, 2 for a usage error or an unusable model folder.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FILE_ERRORS = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kws", description="Keyword spotting tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    classify = commands.add_parser("classify", help="Classify audio files with a model artifact.")
    classify.add_argument("--model", required=True, help="Artifact folder (model.int8.onnx, labels.json, ...).")
    classify.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads.")
    classify.add_argument("files", nargs="+", help="Audio files (any rate / channel count).")
    return parser


def _classify(args: argparse.Namespace) -> int:
    from kws_assets.core.export import KwsClassifier

    try:
        classifier = KwsClassifier.load(args.model, threads=args.threads)
    except (OSError, ValueError) as err:
        print(f"kws: cannot load model from {args.model}: {err}", file=sys.stderr)
        return EXIT_USAGE
    results = classifier.classify_files(args.files, skip_errors=True)
    for result in results:
        print(json.dumps(result), flush=True)
    return EXIT_FILE_ERRORS if any("error" in r for r in results) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kws`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "classify":
        return _classify(args)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
