"""The generated demo corpus: a keyword's recordings do not depend on the other keywords."""

from __future__ import annotations

import json
from pathlib import Path

from kws_assets.core.corpus.connectors.demo import DEMO_MANIFEST, generate_demo_corpus
from kws_assets.settings import DemoCorpusSource


def _recordings(folder: Path) -> dict[str, bytes]:
    """Transcript -> WAV bytes of a generated corpus."""
    rows = [json.loads(line) for line in (folder / DEMO_MANIFEST).read_text().splitlines()]
    return {row["transcript"]: (folder / row["path"]).read_bytes() for row in rows}


def test_a_keywords_recordings_stay_the_same_when_another_keyword_changes(tmp_path: Path):
    # espeak-ng keeps state between syntheses: without a fresh engine per recording, "yes"
    # spoken after "go" differs from "yes" spoken after "house", so every utterance id (a
    # content hash) and every clip cut from it would change with any keyword (a re-run would
    # re-cut, re-augment and re-embed the whole corpus).
    source = DemoCorpusSource(voices=["en-us+m2", "en-us+f1"], sentences_per_keyword=2)
    before = _recordings(generate_demo_corpus(source, ["go", "yes"], "en", 16000, tmp_path / "a"))
    after = _recordings(generate_demo_corpus(source, ["house", "yes"], "en", 16000, tmp_path / "b"))
    kept = {t for t in before if t.split().count("yes") and t in after}
    assert kept, "the 'yes' sentences should not change with the other keyword"
    for transcript in kept:
        assert before[transcript] == after[transcript], transcript
    # and the same recipe gives the same audio from a second process-like start
    again = _recordings(generate_demo_corpus(source, ["go", "yes"], "en", 16000, tmp_path / "c"))
    assert again == before
