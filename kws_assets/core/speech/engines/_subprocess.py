"""Run a command-line synthesiser that writes a WAV file, with a timeout and a clean temp folder."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from kws_assets.core.speech.engines.base import TtsEngineError, as_mono_float32

SUBPROCESS_TIMEOUT_S = 30.0
TEXT_FILE = "text.txt"
WAV_FILE = "out.wav"
STDERR_TAIL_CHARS = 400


def render_with_command(
    engine: str,
    build_args: Callable[[Path, Path], list[str]],
    text: str,
    timeout_s: float = SUBPROCESS_TIMEOUT_S,
) -> tuple[np.ndarray, int]:
    """Write ``text`` to a file, run ``build_args(text_path, wav_path)`` and read the WAV back.

    Text travels as a file, never on the command line or inside an expression, so no word can
    become an option or code.  Raises :class:`TtsEngineError` on a missing binary, non-zero exit,
    timeout, or an empty / unreadable output."""
    with tempfile.TemporaryDirectory(prefix=f"kws_tts_{engine}_") as folder:
        text_path = Path(folder) / TEXT_FILE
        wav_path = Path(folder) / WAV_FILE
        text_path.write_text(text + "\n", encoding="utf-8")
        args = [str(a) for a in build_args(text_path, wav_path)]
        try:
            done = subprocess.run(
                args, capture_output=True, timeout=timeout_s, stdin=subprocess.DEVNULL, check=False
            )
        except FileNotFoundError as error:
            raise TtsEngineError(f"{engine}: {args[0]} not found ({error})") from error
        except subprocess.TimeoutExpired as error:
            raise TtsEngineError(f"{engine}: {args[0]} timed out after {timeout_s} s") from error
        stderr = done.stderr.decode("utf-8", errors="replace").strip()
        if done.returncode != 0:
            raise TtsEngineError(
                f"{engine}: {args[0]} exited {done.returncode}: {stderr[-STDERR_TAIL_CHARS:]}"
            )
        if not wav_path.is_file() or wav_path.stat().st_size == 0:
            raise TtsEngineError(
                f"{engine}: {args[0]} wrote no audio ({stderr[-STDERR_TAIL_CHARS:]})"
            )
        try:
            samples, sample_rate = sf.read(str(wav_path), dtype="float32", always_2d=False)
        except (RuntimeError, sf.LibsndfileError) as error:
            raise TtsEngineError(f"{engine}: unreadable output WAV ({error})") from error
    samples = as_mono_float32(samples)
    if samples.size == 0:
        raise TtsEngineError(f"{engine}: {args[0]} produced no samples for {text!r}")
    return samples, int(sample_rate)
