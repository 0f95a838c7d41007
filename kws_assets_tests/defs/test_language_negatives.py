"""Every language as good as English (issue 15): with negatives on, the validated set of a tiny
en, fr, es or de config holds synthetic ``_unknown_`` clips at the configured ratio and the
dataset guard passes; with negatives off the guard fails and names the setting to change.

Only ``ingest_batch``, ``keyword_clips`` and ``validated_set`` (with its checks) run: training is
covered by the end-to-end tests, and these stay a few seconds of CPU per language.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import yaml

from kws_assets.config import load_config
from kws_assets.definitions import build_definitions
from kws_assets.defs.jobs import INGEST_JOB, KEYWORD_JOB
from kws_assets.lib.in_process import failed_steps
from kws_assets.lib.partitions import CORPUS_BATCHES, KEYWORDS, register_config_partitions
from kws_assets.settings import UNKNOWN_LABEL, KwsConfig
from kws_assets_tests.conftest import FIXTURES

pytestmark = pytest.mark.slow

GUARD_CHECK = "validated_set_unknown_and_test_size"
CURATED = ("validated_set", "quarantined_clips")
# Per language: two keywords in its own spelling, three grid voices (two speak the demo corpus)
# and two held-out voices, all espeak-ng.
LANGUAGES: dict[str, dict[str, Any]] = {
    "en": {
        "keywords": ["yes", "up"],
        "voices": ["en-us+m1", "en-us+f2", "en+m3"],
        "held_out": ["en-us+steph3", "en+michel"],
    },
    "fr": {
        "keywords": ["oui", "maison"],
        "voices": ["fr+m1", "fr-be+f2", "fr+m3"],
        "held_out": ["fr+michel", "fr-be+anika"],
    },
    "es": {
        "keywords": ["sí", "arriba"],
        "voices": ["es+m1", "es-419+f2", "es+m3"],
        "held_out": ["es+michel", "es-419+anika"],
    },
    "de": {
        "keywords": ["ja", "nase"],
        "voices": ["de+m1", "de+f2", "de+m3"],
        "held_out": ["de+michel", "de+anika"],
    },
}
NEGATIVES_OFF = {"neighbours_per_keyword": 0, "other_words": 0, "speech_windows": 0}
# Each word's _unknown_ renders are round(unknown_ratio x renders of one keyword), so the
# measured ratio is off by at most 0.5 / renders from rounding; the quality gate may drop a few
# clips of either class on top (a word espeak-ng speaks too quietly or too short): 10 points.
QUALITY_GATE_SLACK = 0.10


def tiny_config(folder: Path, language: str, negatives_on: bool = True) -> Path:
    """The tiny config of ``language`` (fixture ``tiny_negatives.yaml``) written into ``folder``."""
    spec = LANGUAGES[language]
    data = yaml.safe_load((FIXTURES / "tiny_negatives.yaml").read_text(encoding="utf-8"))
    data.update(keywords=spec["keywords"], language=language)
    data["sources"][0]["voices"] = spec["voices"][:2]
    data["tts"]["voices"] = spec["voices"]
    data["evaluation"]["held_out_voices"] = spec["held_out"]
    if not negatives_on:
        data["negatives"] = {**data["negatives"], **NEGATIVES_OFF, "unknown_ratio": 0.0}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kws.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def materialize_validated_set(config_file: Path) -> dict[str, Any]:
    """Ingest every corpus batch, make every keyword's clips, then ``validated_set`` with its
    checks (``quarantined_clips`` comes with it: one multi-asset); what a test needs of it."""
    home = config_file.parent / "dagster_home"
    home.mkdir(exist_ok=True)
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        defs = build_definitions(config_file)
        partitions = register_config_partitions(instance, defs.resources["settings"].config)
        plan = [(INGEST_JOB, key) for key in partitions[CORPUS_BATCHES.name]]
        plan += [(KEYWORD_JOB, key) for key in partitions[KEYWORDS.name]]
        for job, key in plan:
            run = defs.resolve_job_def(job).execute_in_process(
                instance=instance, partition_key=key, raise_on_error=False
            )
            assert run.success, (job, key, failed_steps(run))
        curate = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey(key) for key in CURATED],
            raise_on_error=False,
        )
        checks = {e.check_name: e for e in curate.get_asset_check_evaluations()}
        validated = defs.load_asset_value("validated_set", instance=instance)
    return {"run": curate, "checks": checks, "validated": validated}


def expected_unknown_words(cfg: KwsConfig) -> tuple[int, int]:
    """(renders of one keyword, synthetic _unknown_ word renders per keyword) the settings ask
    for: the grid voices x rates x pitches plus every sampled speaker's renders, and
    ``negatives.unknown_ratio`` of that (:class:`kws_assets.settings.NegativeSettings`)."""
    grid = cfg.tts
    renders = (
        len(grid.voices) * len(grid.rates) * len(grid.pitches)
        + grid.sampled_speakers * grid.renders_per_speaker
    )
    return renders, round(cfg.negatives.unknown_ratio * renders)


@pytest.fixture(scope="module", params=sorted(LANGUAGES))
def negatives_on(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    language = request.param
    config_file = tiny_config(tmp_path_factory.mktemp(f"negatives_{language}"), language)
    return {"cfg": load_config(config_file), **materialize_validated_set(config_file)}


def test_synthetic_unknown_clips_at_the_configured_ratio(negatives_on: dict[str, Any]) -> None:
    cfg, validated = negatives_on["cfg"], negatives_on["validated"]
    assert set(validated["language"].drop_nulls()) == {cfg.language}
    synthetic = validated.filter(pl.col("source") == "synthetic")
    unknown = synthetic.filter(pl.col("label") == UNKNOWN_LABEL).height
    assert validated.filter(pl.col("label") == UNKNOWN_LABEL).height == unknown, (
        "every _unknown_ clip of these configs is synthetic"
    )
    renders, words_per_keyword = expected_unknown_words(cfg)
    n_keywords = len(cfg.keywords)
    windows = cfg.negatives.speech_windows * n_keywords
    asked = words_per_keyword * n_keywords + windows
    assert (1 - QUALITY_GATE_SLACK) * asked <= unknown <= asked, (unknown, asked)
    keyword_clips = synthetic.filter(pl.col("label").is_in(cfg.keywords)).height / n_keywords
    assert keyword_clips >= (1 - QUALITY_GATE_SLACK) * renders, (keyword_clips, renders)
    ratio = (unknown - windows) / n_keywords / keyword_clips
    tolerance = 0.5 / renders + QUALITY_GATE_SLACK
    print(
        f"\n{cfg.language}: {unknown} synthetic _unknown_ clips ({windows} speech windows), "
        f"{keyword_clips:.1f} per keyword; word ratio {ratio:.3f} vs configured "
        f"{cfg.negatives.unknown_ratio}"
    )
    assert ratio == pytest.approx(cfg.negatives.unknown_ratio, abs=tolerance)


def test_the_guard_and_every_validated_set_check_pass(negatives_on: dict[str, Any]) -> None:
    checks, run = negatives_on["checks"], negatives_on["run"]
    assert run.success, failed_steps(run)
    assert GUARD_CHECK in checks
    failed = {name: e.description for name, e in checks.items() if not e.passed}
    assert not failed, failed
    guard = negatives_on["cfg"].dataset_guard
    assert guard.min_unknown_share > 0 and guard.min_test_clips_per_label > 0
    counts = checks[GUARD_CHECK].metadata["clips_per_label_and_split"].value
    assert set(counts) == set(negatives_on["cfg"].labels)


@pytest.mark.parametrize("language", ["fr"])
def test_without_negatives_the_guard_fails_naming_the_setting(
    language: str, tmp_path: Path
) -> None:
    result = materialize_validated_set(tiny_config(tmp_path, language, negatives_on=False))
    assert not result["run"].success
    guard = result["checks"][GUARD_CHECK]
    assert not guard.passed
    assert "negatives.unknown_ratio" in guard.description
    assert "dataset_guard.min_unknown_share" in guard.description
    assert result["validated"].filter(pl.col("label") == UNKNOWN_LABEL).height == 0


@pytest.mark.parametrize(
    ("language", "phrase", "voices", "held_out"),
    [
        ("en", "hey jarvis", LANGUAGES["en"]["voices"], LANGUAGES["en"]["held_out"]),
        ("fr", "bonjour maison", LANGUAGES["fr"]["voices"], LANGUAGES["fr"]["held_out"]),
    ],
)
def test_a_phrase_config_holds_whole_phrases_and_their_near_misses(
    tmp_path: Path, language: str, phrase: str, voices: list[str], held_out: list[str]
) -> None:
    """Issue 23: a wake phrase through the graph up to ``validated_set``: the clip fits the
    phrase, the demo corpus's utterances yield aligned phrase clips, and the phrase's words
    alone and with one word swapped are ``_unknown_`` clips of the validated set."""
    data = yaml.safe_load((FIXTURES / "tiny_negatives.yaml").read_text(encoding="utf-8"))
    data.update(keywords=[phrase], language=language)
    data["sources"][0]["voices"] = voices[:2]
    data["tts"]["voices"] = voices
    data["evaluation"]["held_out_voices"] = held_out
    path = tmp_path / "kws.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    cfg = load_config(path)
    assert cfg.audio.clip_seconds > 1.0
    result = materialize_validated_set(path)
    validated = result["validated"]
    assert set(validated["num_samples"]) == {cfg.audio.clip_samples}
    aligned = validated.filter((pl.col("label") == phrase) & (pl.col("source") != "synthetic"))
    assert aligned.height >= 1 and set(aligned["word"]) == {phrase}
    unknown = validated.filter(
        (pl.col("label") == UNKNOWN_LABEL) & (pl.col("source") == "synthetic")
    )
    # a synthetic clip's origin names what was said: tts|<text>|<voice>|... or, inside a carrier
    # phrase, tts|<spoken>|<text>|<voice>|...
    said = {part for origin in unknown["origin_id"] for part in origin.split("|")[1:3]}
    first, second = phrase.split()
    assert {first, second} <= said
    assert any(s.startswith(f"{first} ") and s != phrase for s in said)
    assert any(s.endswith(f" {second}") and s != phrase for s in said)
