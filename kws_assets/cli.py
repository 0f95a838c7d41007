"""The ``kws`` command line: classify clips or spot keywords in long recordings with a trained
model artifact folder.

    kws classify --model DIR a.wav b.wav

prints one JSON object per file on stdout, in argument order:
``{"path": ..., "label": ..., "score": ..., "scores": {label: probability}}``, or
``{"path": ..., "error": ...}`` for a file that cannot be read.

    kws detect --model DIR long.wav [more.wav ...] [--threshold 0.8] [--hop-ms 100]

slides the int8 model over each recording (posterior smoothing, a refractory period after each
detection) and prints one JSON line per detection:
``{"path": ..., "start": s, "end": s, "keyword": ..., "score": p}``; a file that cannot be read
prints ``{"path": ..., "error": ...}``.

Without ``--threshold`` / ``--smooth`` / ``--refractory-s`` / ``--hop-ms`` the detector runs at
the operating point shipped with the model: ``DIR/operating_point.json`` (or the file
``--operating-point`` names; the evaluation asset writes one per family, selected for its
false-accepts-per-hour target); an option given on the command line overrides that one setting.
A shipped format that carries its own point (an ESPHome folder: its JSONs' cutoff and sliding
window, at the device's 30-ms inference step) runs that one.  With no shipped point the
built-in defaults are used and stderr says so.

``--model`` takes an artifact folder of any registered model family
(``kws_assets.core.families``): the folder says which (``front_end.json``; a folder without one
is the DS-CNN on MFCC), and the family's classifier runs it.

    kws review [--config kws.yaml] [--port 8765] [--reviewer NAME]

serves the materialized ``review_queue`` on http://127.0.0.1:8765/ (``kws_assets.review_page``):
listen, look at the spectrogram, keep / relabel / reject; ``validated_set`` honours the decisions
on its next run.

The exit status is 0 when every file was processed, 1 when any file failed, 2 for a usage error
or an unusable model folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FILE_ERRORS = 1
EXIT_USAGE = 2
# Detection defaults (the same numbers as kws_assets.core.model.detect; kept here so --help needs no
# torch).
DEFAULT_THRESHOLD = 0.8
DEFAULT_HOP_MS = 100.0
DEFAULT_SMOOTHING_WINDOWS = 3
DEFAULT_REFRACTORY_S = 1.0
# The graphs an artifact ships (kws_assets.core.ship.cpu_latency; kept here for the same reason).
PRECISION_CHOICES = ("int8", "float", "auto")
PRECISION_HELP = (
    "Which graph to run: int8 (default; what the pipeline's gates measured), float, or auto "
    "(the one cpu_latency.json found faster on the machine that built the artifact)."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kws", description="Keyword spotting tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    classify = commands.add_parser("classify", help="Classify audio files with a model artifact.")
    classify.add_argument(
        "--model", required=True, help="Artifact folder (model.int8.onnx, labels.json, ...)."
    )
    classify.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads.")
    classify.add_argument(
        "--precision", choices=PRECISION_CHOICES, default="int8", help=PRECISION_HELP
    )
    classify.add_argument("files", nargs="+", help="Audio files (any rate / channel count).")
    detect = commands.add_parser("detect", help="Spot keywords in long recordings.")
    detect.add_argument(
        "--model", required=True, help="Artifact folder (model.int8.onnx, labels.json, ...)."
    )
    detect.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="Smoothed keyword posterior that fires a detection (default: the "
        f"shipped operating point's, else {DEFAULT_THRESHOLD}).",
    )
    detect.add_argument(
        "--hop-ms",
        type=float,
        default=None,
        help=f"Window stride (default: shipped, else {DEFAULT_HOP_MS}).",
    )
    detect.add_argument(
        "--smooth",
        type=int,
        default=None,
        help="Windows in the posterior moving average (default: shipped, else "
        f"{DEFAULT_SMOOTHING_WINDOWS}).",
    )
    detect.add_argument(
        "--refractory-s",
        type=float,
        default=None,
        help="No new detection this long after one (default: shipped, else "
        f"{DEFAULT_REFRACTORY_S}).",
    )
    detect.add_argument(
        "--operating-point",
        default=None,
        help="operating_point.json to use instead of the one in --model.",
    )
    detect.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads.")
    detect.add_argument(
        "--precision", choices=PRECISION_CHOICES, default="int8", help=PRECISION_HELP
    )
    detect.add_argument("files", nargs="+", help="Audio files (any rate / channel count / length).")
    review = commands.add_parser(
        "review", help="Serve the review queue on a local page (keep / relabel / reject)."
    )
    review.add_argument(
        "--config", default=None, help="Config file (default: $KWS_CONFIG or ./kws.yaml)."
    )
    review.add_argument("--host", default=None, help="Address (default: review.host, 127.0.0.1).")
    review.add_argument("--port", type=int, default=None, help="Port (default: review.port).")
    review.add_argument(
        "--reviewer", default=os.environ.get("USER", ""), help="Your name in the decisions."
    )
    return parser


def _classify(args: argparse.Namespace) -> int:
    from kws_assets.core.families import load_classifier

    try:
        classifier = load_classifier(args.model, threads=args.threads, precision=args.precision)
    except (OSError, ValueError) as err:
        print(f"kws: cannot load model from {args.model}: {err}", file=sys.stderr)
        return EXIT_USAGE
    results = classifier.classify_files(args.files, skip_errors=True)
    for result in results:
        print(json.dumps(result), flush=True)
    return EXIT_FILE_ERRORS if any("error" in r for r in results) else EXIT_OK


def _detect(args: argparse.Namespace) -> int:
    from kws_assets.core.audio.io import AudioReadError
    from kws_assets.core.families import load_classifier
    from kws_assets.core.model.detect import DetectorOperatingPoint, StreamingDetector
    from kws_assets.core.ship.export import (
        OPERATING_POINT_FILE,
        operating_point_warning,
        read_operating_point,
    )

    try:
        classifier = load_classifier(args.model, threads=args.threads, precision=args.precision)
        shipped = read_operating_point(args.operating_point or args.model)
        if shipped is None and args.operating_point is None:
            # a shipped format that carries its own point (an ESPHome JSON's cutoff and window)
            shipped = getattr(classifier, "operating_point", None)
            if shipped is not None:
                print(f"kws: using the point {args.model} ships: {shipped}", file=sys.stderr)
        if shipped is None:
            print(
                f"kws: {args.model} ships no {OPERATING_POINT_FILE}; using the defaults "
                f"(threshold {DEFAULT_THRESHOLD}, smoothing {DEFAULT_SMOOTHING_WINDOWS} windows, "
                f"refractory {DEFAULT_REFRACTORY_S} s, hop {DEFAULT_HOP_MS} ms) unless given",
                file=sys.stderr,
            )
            shipped = DetectorOperatingPoint(
                DEFAULT_THRESHOLD, DEFAULT_SMOOTHING_WINDOWS, DEFAULT_REFRACTORY_S, DEFAULT_HOP_MS
            )
        else:
            warning = operating_point_warning(args.operating_point or args.model)
            if warning is not None:
                print(f"kws: {warning}", file=sys.stderr)
        point = DetectorOperatingPoint(
            shipped.threshold if args.threshold is None else args.threshold,
            shipped.smoothing_windows if args.smooth is None else args.smooth,
            shipped.refractory_s if args.refractory_s is None else args.refractory_s,
            shipped.hop_ms if args.hop_ms is None else args.hop_ms,
        )
        detector = StreamingDetector.at(classifier, point)
    except (OSError, ValueError) as err:
        print(f"kws: cannot use model from {args.model}: {err}", file=sys.stderr)
        return EXIT_USAGE
    failed = False
    for path in args.files:
        try:
            detections = detector.detect_file(path)
        except (AudioReadError, OSError) as err:
            print(json.dumps({"path": path, "error": str(err)}), flush=True)
            failed = True
            continue
        for detection in detections:
            print(json.dumps({"path": path, **detection.as_dict()}), flush=True)
    return EXIT_FILE_ERRORS if failed else EXIT_OK


def _review(args: argparse.Namespace) -> int:
    from kws_assets.review_page import load_session, serve

    try:
        session, host, port = load_session(args.config)
    except Exception as err:  # not materialized, storage unreachable, bad config: say so, exit 2
        print(
            f"kws: cannot read the review queue ({err}); materialize it first "
            "(the review_clips job)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    host = args.host or host
    port = port if args.port is None else args.port
    print(
        f"kws: reviewing {session.queue.height} clip(s) at http://{host}:{port}/", file=sys.stderr
    )
    serve(session, host, port, args.reviewer)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kws`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "classify":
        return _classify(args)
    if args.command == "detect":
        return _detect(args)
    if args.command == "review":
        return _review(args)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
