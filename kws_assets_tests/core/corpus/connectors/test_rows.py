"""Row-level isolation of manifest reading (connectors/rows.py): one hostile row is one problem
row naming file and line, every other row is kept, and the manifest is streamed."""

from __future__ import annotations

import io
import json
import tracemalloc

import polars as pl
import soundfile as sf

from kws_assets.config import corpus_reading
from kws_assets.core.audio import quality
from kws_assets.core.corpus import ingest as corpus
from kws_assets.core.corpus.connectors.base import corpus_root
from kws_assets.core.corpus.connectors.manifest import list_manifest
from kws_assets.core.corpus.connectors.rows import RowLimits, delimited_rows, jsonl_rows
from kws_assets.settings import IngestSettings, ManifestSource
from kws_assets_tests.corpus_files import make_config, tone

LIMITS = RowLimits(max_field_bytes=1000, max_line_bytes=4000, max_rows=100)


def rows_of(text: bytes, limits: RowLimits = LIMITS, delimiter: str = ","):
    columns, rows = delimited_rows(io.BytesIO(text), "m.csv", limits, delimiter=delimiter)
    return columns, list(rows)


def test_two_megabyte_field_is_one_problem_and_every_good_row_stays(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    lines = ["path,transcript,speaker"]
    for i in range(6):
        sf.write(root / f"good{i}.wav", tone(seed=i, freq=300 + 40 * i), 16000)
        lines.append(f"good{i}.wav,say yes number {i},spk{i}")
    lines.insert(4, "huge.wav," + "x" * (2 * 1024 * 1024) + ",mallory")  # line 5 of the file
    lines += [f"missing{i}.wav,no,spk{i}" for i in range(20)]
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    cfg = make_config(tmp_path, [{"kind": "manifest", "name": "office", "root": str(root)}])
    table = corpus.load_corpus(cfg.sources, corpus_reading(cfg)).table
    usable = corpus.usable_rows(table)
    assert sorted(usable["original_path"].to_list()) == [f"good{i}.wav" for i in range(6)]
    bad = table.filter(pl.col("reject_reason") == quality.LINE_TOO_LONG)
    assert bad["original_path"].to_list() == ["manifest.csv:5"]
    assert (
        "manifest.csv:5" in bad["reject_detail"][0] and "max_line_bytes" in bad["reject_detail"][0]
    )
    assert table.filter(pl.col("reject_reason") == quality.SOURCE_UNREADABLE).is_empty()
    assert table.filter(pl.col("reject_reason") == quality.MISSING).height == 20
    assert table.height == 27


def test_field_limit_line_limit_column_count_and_quotes_are_per_row():
    big_field = "y" * 1500  # over max_field_bytes, under max_line_bytes
    text = (
        "path,transcript,speaker\n"
        "a.wav,ok,s1\n"
        f"b.wav,{big_field},s2\n"
        f"c.wav,{'z' * 5000},s3\n"
        "d.wav,only two\n"
        'e.wav,"multi\nline, quoted",s5\n'
        "g.wav,fine,s7\n"
    ).encode()
    columns, rows = rows_of(text)
    assert columns == ["path", "transcript", "speaker"]
    by_ref = {r.ref: r for r in rows}
    assert by_ref["m.csv:2"].values == {"path": "a.wav", "transcript": "ok", "speaker": "s1"}
    assert (
        by_ref["m.csv:3"].reason == quality.FIELD_TOO_LARGE
        and "'transcript'" in by_ref["m.csv:3"].detail
    )
    assert by_ref["m.csv:4"].reason == quality.LINE_TOO_LONG
    assert (
        by_ref["m.csv:5"].reason == quality.BAD_MANIFEST_ROW
        and "2 fields" in by_ref["m.csv:5"].detail
    )
    assert by_ref["m.csv:6"].values["transcript"] == "multi\nline, quoted"
    assert by_ref["m.csv:8"].values["path"] == "g.wav"  # line 8: the quoted field took two


def test_bad_encoding_is_kept_for_the_connector_to_name(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    (root / "manifest.csv").write_bytes(
        b"path,transcript,speaker\na.wav,caf\xe9,s\nb.wav,ok,\x00s\n"
    )
    entries, problems = list_manifest(ManifestSource(name="m", root=str(root)), corpus_root(root))
    reasons = {p.original_path: (p.reason, p.detail) for p in problems}
    assert reasons["a.wav"][0] == quality.BAD_TRANSCRIPT and "manifest.csv:2" in reasons["a.wav"][1]
    assert reasons["b.wav"][0] == quality.MISSING_SPEAKER and not entries


def test_jsonl_hostile_lines_are_named_and_the_rest_kept():
    lines = [
        json.dumps({"path": "a.wav", "transcript": "yes", "speaker": "s"}),
        "[" * 100_000 + "]" * 100_000,  # over the line limit
        "[" * 3000,  # deep nesting, under the limit
        '{"path": 1' + "0" * 5000 + "}",  # an int beyond Python's digit limit
        "not json",
        "[1, 2]",
        json.dumps({"path": "b.wav", "transcript": "t" * 1200, "speaker": "s"}),
        json.dumps({"path": "c.wav", "transcript": "no", "speaker": "s"}),
    ]
    limits = RowLimits(max_field_bytes=1000, max_line_bytes=8000, max_rows=100)
    rows = list(jsonl_rows(io.BytesIO("\n".join(lines).encode()), "m.jsonl", limits))
    assert [r.values["path"] for r in rows if r.values] == ["a.wav", "c.wav"]
    assert [(r.line, r.reason) for r in rows if r.values is None] == [
        (2, quality.LINE_TOO_LONG),
        (3, quality.BAD_MANIFEST_ROW),
        (4, quality.BAD_MANIFEST_ROW),
        (5, quality.BAD_MANIFEST_ROW),
        (6, quality.BAD_MANIFEST_ROW),
        (7, quality.FIELD_TOO_LARGE),
    ]


def test_row_cap_stops_reading_with_one_named_problem():
    text = "path,transcript,speaker\n" + "".join(f"{i}.wav,t,s\n" for i in range(10))
    _, rows = rows_of(text.encode(), RowLimits(1000, 4000, max_rows=4))
    assert [r.values["path"] for r in rows if r.values] == ["0.wav", "1.wav", "2.wav", "3.wav"]
    assert rows[-1].reason == quality.TOO_MANY_ROWS and rows[-1].line == 6


def test_manifest_is_streamed_not_held(tmp_path):
    """20k rows (~0.4 MB) are read with far less than the file's size in extra memory per row."""
    path = tmp_path / "big.csv"
    with path.open("w") as out:
        out.write("path,transcript,speaker\n")
        for i in range(20_000):
            out.write(f"clip{i}.wav,t,s\n")
    size = path.stat().st_size
    limits = RowLimits.of(IngestSettings())
    tracemalloc.start()
    with path.open("rb") as stream:
        _, rows = delimited_rows(stream, "big.csv", limits, delimiter=",")
        count = sum(1 for r in rows if r.values)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 20_000
    assert peak < size / 4, (peak, size)


def test_common_voice_and_librispeech_isolate_oversized_lines(tmp_path):
    from kws_assets.core.corpus.connectors.common_voice import list_common_voice
    from kws_assets.core.corpus.connectors.librispeech import list_librispeech
    from kws_assets.settings import CommonVoiceSource, LibriSpeechSource

    cv = tmp_path / "cv"
    cv.mkdir()
    (cv / "validated.tsv").write_text(
        "client_id\tpath\tsentence\n"
        'c1\ta.wav\tsay "yes" now\n'
        f"c2\tb.wav\t{'x' * 300_000}\n"
        "c3\tc.wav\textra\tfield\n"
        "c4\td.wav\tno\n"
    )
    entries, problems = list_common_voice(
        CommonVoiceSource(name="cv", root=str(cv)), corpus_root(cv), "en"
    )
    assert [e.original_path for e in entries] == ["clips/a.wav", "clips/d.wav"]
    assert entries[0].transcript == 'say "yes" now'
    assert [(p.original_path, p.reason) for p in problems] == [
        ("validated.tsv:3", quality.LINE_TOO_LONG),
        ("validated.tsv:4", quality.BAD_MANIFEST_ROW),
    ]

    ls = tmp_path / "ls" / "19" / "198"
    ls.mkdir(parents=True)
    (ls / "19-198.trans.txt").write_text(
        f"19-198-0001 YES\n19-198-0002 {'N' * 200_000}\n19-198-0003 NO\n"
    )
    entries, problems = list_librispeech(
        LibriSpeechSource(name="ls", root=str(tmp_path / "ls")), corpus_root(tmp_path / "ls")
    )
    assert [e.transcript for e in entries] == ["YES", "NO"]
    assert [(p.original_path, p.reason) for p in problems] == [
        ("19/198/19-198.trans.txt:2", quality.LINE_TOO_LONG)
    ]
