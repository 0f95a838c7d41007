"""Property tests (hypothesis) over everything that reads untrusted bytes: manifest parsing, the
WAV fast path, read_audio, the file-facts decoder and the landing-zone scanner.

The only outcomes allowed are a row/clip/batch or a *named* rejection — never another exception,
never a hang (each call runs under a timeout), and the same answer on a re-run.  Examples are
derandomized (fixed seed).  Profile ``ci`` (default) keeps ``make test``'s share to seconds;
``KWS_HYPOTHESIS_PROFILE=fuzz`` (``make fuzz``) runs many more.
"""

from __future__ import annotations

import concurrent.futures
import io
import os
import struct
import uuid

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kws_assets.core.audio import quality
from kws_assets.core.audio.io import READ_ERROR_REASONS, AudioReadError, read_audio
from kws_assets.core.audio.pcm_wav import decode_pcm16_mono
from kws_assets.core.corpus.connectors.files import decode_facts
from kws_assets.core.corpus.connectors.manifest import ManifestError, manifest_rows
from kws_assets.core.corpus.connectors.rows import ManifestRow, RowLimits
from kws_assets.core.corpus.landing import scan_landing
from kws_assets.core.text_safety import escape_cell
from kws_assets.settings import IngestSettings

settings.register_profile(
    "ci",
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
settings.register_profile(
    "fuzz",
    max_examples=3000,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
settings.load_profile(os.environ.get("KWS_HYPOTHESIS_PROFILE", "ci"))

# An exception swallowed inside a C callback (libsndfile's virtual I/O) is a failure too.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
CALL_TIMEOUT_S = 10.0
LIMITS = RowLimits(max_field_bytes=256, max_line_bytes=1024, max_rows=50)
INGEST = IngestSettings(max_utterance_s=5.0, max_decoded_mb=4.0)
ROW_REASONS = {
    quality.BAD_MANIFEST_ROW,
    quality.LINE_TOO_LONG,
    quality.FIELD_TOO_LARGE,
    quality.TOO_MANY_ROWS,
}
FILE_REASONS = set(READ_ERROR_REASONS) | {
    quality.UNSUPPORTED_ENCODING,
    quality.TOO_LONG,
    quality.TOO_LARGE,
    quality.TOO_MANY_CHANNELS,
}
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=1)


def bounded(fn, *args, **kwargs):
    """fn(*args) or its exception, failing the test if it takes over CALL_TIMEOUT_S (a hang)."""
    future = _POOL.submit(fn, *args, **kwargs)
    return future.result(timeout=CALL_TIMEOUT_S)


def _seed_audio() -> list[bytes]:
    rng = np.random.default_rng(0)
    tone = (0.3 * np.sin(np.arange(1600) / 5)).astype(np.float32)
    out = []
    for fmt, subtype, channels in (
        ("WAV", "PCM_16", 1),
        ("WAV", "FLOAT", 2),
        ("WAV", "PCM_24", 1),
        ("FLAC", "PCM_16", 1),
        ("AIFF", "PCM_16", 1),
        ("AU", "ULAW", 1),
    ):
        buffer = io.BytesIO()
        data = (
            tone
            if channels == 1
            else np.stack([tone, rng.standard_normal(1600).astype(np.float32) * 0.1], 1)
        )
        sf.write(buffer, data, 16000, subtype=subtype, format=fmt)
        out.append(buffer.getvalue())
    return out


SEEDS = _seed_audio()


@st.composite
def mutated_audio(draw) -> bytes:
    """A valid file with bytes overwritten (mostly in the header), size fields rewritten, or
    truncated; or plain random bytes, or random bytes behind a RIFF/WAVE header."""
    kind = draw(st.sampled_from(["mutate", "truncate", "size", "random", "riff"]))
    if kind == "random":
        return draw(st.binary(max_size=2048))
    if kind == "riff":
        return (
            b"RIFF"
            + draw(st.binary(min_size=4, max_size=4))
            + b"WAVE"
            + draw(st.binary(max_size=512))
        )
    data = bytearray(draw(st.sampled_from(SEEDS)))
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data)))])
    if kind == "size":
        pos = draw(st.integers(0, min(len(data), 80) - 4))
        struct.pack_into(
            "<I",
            data,
            pos,
            draw(st.sampled_from([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0xFFFFFFF0, len(data) * 1000])),
        )
        return bytes(data)
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, min(len(data), 96) - 1))
        data[pos] = draw(st.integers(0, 255))
    return bytes(data)


def _read_outcome(data: bytes):
    try:
        info = read_audio(data, max_seconds=5.0, max_channels=8, max_decoded_bytes=4 << 20)
    except AudioReadError as exc:
        return ("rejected", exc.reason)
    assert info.samples.dtype == np.float32 and info.samples.ndim == 1 and info.samples.size > 0
    return (
        "clip",
        info.frames,
        info.original_channels,
        info.original_sample_rate,
        float(np.float64(info.samples).sum()),
    )


@given(mutated_audio())
def test_read_audio_gives_a_clip_or_a_named_rejection(data):
    first = bounded(_read_outcome, data)
    if first[0] == "rejected":
        assert first[1] in READ_ERROR_REASONS
    assert bounded(_read_outcome, data) == first


@given(mutated_audio(), st.sampled_from([8000, 16000, 44100]))
def test_pcm_fast_path_is_none_or_samples_that_fit_the_file(data, rate):
    out = bounded(decode_pcm16_mono, data, rate)
    if out is not None:
        assert out.dtype == np.float32 and out.size * 2 <= len(data)
        assert np.abs(out).max() <= 1.0
        reference = read_audio(data)  # whatever the fast path accepts, libsndfile reads the same
        assert reference.frames == out.size and np.array_equal(reference.samples, out)


@given(mutated_audio())
def test_file_facts_are_facts_or_a_named_reason(data):
    facts = bounded(decode_facts, data, "x.wav", INGEST)
    assert facts.size_bytes == len(data)
    if facts.error_reason is not None:
        assert facts.error_reason in FILE_REASONS | {quality.EMPTY}, facts
    else:
        assert facts.frames and facts.sample_rate and facts.channels
    assert bounded(decode_facts, data, "x.wav", INGEST) == facts


HOSTILE_TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "[x](http://e.vil)",
            "![i](http://e.vil/a.png)",
            "<script>alert(1)</script>",
            '"',
            '""',
            '"a\nb"',
            "\\",
            "\x00",
            "\ufeff",
            "a\tb",
            "\r",
            "é",
            "\udc80",
        ]
    ),
    st.text(alphabet='",\t\n\r\\[]<>', max_size=30),
)


@st.composite
def manifest_bytes(draw) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from([".csv", ".tsv", ".jsonl"]))
    if draw(st.booleans()):
        return suffix, draw(st.binary(max_size=3000))
    sep = "\t" if suffix == ".tsv" else ","
    lines = [] if suffix == ".jsonl" else [sep.join(["path", "transcript", "speaker"])]
    for _ in range(draw(st.integers(0, 12))):
        fields = [draw(HOSTILE_TEXT) for _ in range(draw(st.integers(1, 4)))]
        if suffix == ".jsonl":
            lines.append(draw(st.sampled_from(['{"path": %s}', "%s", "[%s]"])) % repr(fields[0]))
        else:
            lines.append(sep.join(fields))
        if draw(st.integers(0, 9)) == 0:
            lines.append("p" * draw(st.integers(200, 3000)))
    text = "\n".join(lines).encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()) and text:
        cut = draw(st.integers(0, len(text)))
        text = text[:cut]
    return suffix, text


def _rows_outcome(suffix: str, data: bytes):
    try:
        rows = list(manifest_rows(f"m{suffix}", io.BytesIO(data), LIMITS))
    except ManifestError as exc:
        return ("source_rejected", str(exc))
    for row in rows:
        assert isinstance(row, ManifestRow) and row.ref == f"m{suffix}:{row.line}"
        if row.values is None:
            assert row.reason in ROW_REASONS and row.ref in row.detail
        else:
            assert isinstance(row.values, dict)
    return ("rows", rows)


@given(manifest_bytes())
def test_manifest_rows_are_rows_or_named_problems(case):
    suffix, data = case
    first = bounded(_rows_outcome, suffix, data)
    assert bounded(_rows_outcome, suffix, data) == first
    if first[0] == "rows":
        assert sum(1 for r in first[1] if r.values is not None) <= LIMITS.max_rows
        for row in first[1]:
            for value in (row.values or {}).values():
                assert "\n" not in escape_cell(value) and "<" not in escape_cell(value)


FOLDER_NAMES = st.one_of(
    st.sampled_from(["b1", "_stage", ".hidden", "bad name", "a" * 200, "ü", "x..y", "-", "0"]),
    st.text(alphabet="abcXYZ019._- ", min_size=1, max_size=12),
)


@settings(max_examples=20)
@given(
    st.lists(
        st.tuples(
            FOLDER_NAMES,
            st.sampled_from(["manifest.csv", "manifest.jsonl", None]),
            st.binary(max_size=200),
        ),
        max_size=6,
    )
)
def test_landing_scan_is_batches_or_named_problems(tmp_path_factory, folders):
    zone = tmp_path_factory.mktemp(f"zone-{uuid.uuid4().hex[:6]}")
    for name, manifest, data in folders:
        folder = zone / name.strip().replace("/", "_")
        if folder == zone or folder.name in {".", ".."}:
            continue
        folder.mkdir(exist_ok=True)
        if manifest:
            (folder / manifest).write_bytes(data)
    first = bounded(scan_landing, str(zone), ["manifest.csv", "manifest.jsonl"])
    assert all(b.key.startswith("landing-") for b in first.batches)
    assert {p.reason for p in first.problems} <= {
        "invalid_batch_name",
        "ambiguous_manifest",
        "unreadable_manifest",
    }
    assert bounded(scan_landing, str(zone), ["manifest.csv", "manifest.jsonl"]) == first
