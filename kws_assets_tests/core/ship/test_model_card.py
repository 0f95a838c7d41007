"""MODEL_CARD.md states the real per-group numbers of a trained model, escaped."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from kws_assets.core.ship.manifest import OperatingPoint
from kws_assets.core.ship.model_card import (
    LicenseEntry,
    ModelCardInputs,
    escape_markdown,
    render_model_card,
    speaker_group_metrics,
)
from kws_assets.core.ship.tflite import TfliteClassifier
from kws_assets_tests.tone_detector import LABELS

HOSTILE_ENGINE = "evil|engine <script>"


def _groups(n: int) -> dict[str, list[object]]:
    rng = np.random.default_rng(5)
    return {
        "engine": [("espeak", "piper", HOSTILE_ENGINE)[i % 3] for i in range(n)],
        "perturbed": [bool(v) for v in rng.integers(0, 2, n)],
    }


def _predictions(ship_model) -> tuple[list[str], list[str], np.ndarray]:
    x = ship_model.x_test.copy()
    groups = _groups(len(x))
    # perturbed clips get strong noise, so the groups really differ
    noisy = np.array(groups["perturbed"])
    x[noisy] += np.random.default_rng(6).normal(0, 1.2, x[noisy].shape).astype(np.float32)
    probs = TfliteClassifier(ship_model.tflite).classify_features(x)
    return (
        [LABELS[i] for i in ship_model.y_test],
        [LABELS[i] for i in probs.argmax(axis=1)],
        noisy,
    )


def _expected(truth, pred, values, wanted):
    """Plain loops, independent of the numpy code under test."""
    clips = correct = kw = missed = nk = fa = 0
    for t, p, v in zip(truth, pred, values, strict=True):
        if str(v) != wanted:
            continue
        clips += 1
        correct += t == p
        if t.startswith("_"):
            nk += 1
            fa += not p.startswith("_")
        else:
            kw += 1
            missed += t != p
    return clips, correct / clips, missed / kw if kw else None, fa / nk if nk else None


def test_group_metrics_and_card(ship_model) -> None:
    truth, pred, _ = _predictions(ship_model)
    groups = _groups(len(truth))
    rows = speaker_group_metrics(truth, pred, groups)
    assert [(r.grouping, r.group) for r in rows] == [
        ("engine", "espeak"),
        ("engine", HOSTILE_ENGINE),
        ("engine", "piper"),
        ("perturbed", "False"),
        ("perturbed", "True"),
    ]
    for row in rows:
        clips, acc, frr, far = _expected(truth, pred, groups[row.grouping], row.group)
        assert (row.clips, row.accuracy, row.frr, row.false_accept_rate) == pytest.approx(
            (clips, acc, frr, far)
        )
    by = {(r.grouping, r.group): r for r in rows}
    assert by[("perturbed", "True")].accuracy < by[("perturbed", "False")].accuracy

    card = render_model_card(
        ModelCardInputs(
            model_name="tones",
            family="mfcc",
            keywords=LABELS[2:],
            intended_use="Detect two tones on a microcontroller.",
            limitations=["Synthetic tones only."],
            training_counts=[
                ("espeak", "synthetic", 120),
                (HOSTILE_ENGINE, "[link](http://x)", 40),
            ],
            evaluation={
                "synthetic test": {"accuracy": 0.95, "frr": 0.05},
                "held-out voices": {"accuracy": 0.9},
            },
            target_fa_per_hour=0.5,
            frr_at_target=0.125,
            threshold=0.7,
            group_metrics=rows,
            licenses=[
                LicenseEntry("voice", "en-us+steph3", "GPL-3.0"),
                LicenseEntry("corpus", "Speech Commands", "CC-BY-4.0"),
            ],
            sizes={"int8_weight_bytes": 2152},
        )
    )
    for row in rows:
        assert f"| {row.accuracy:.4f} | {row.keyword_clips} |" in card
        frr = "n/a" if row.frr is None else f"{row.frr:.4f}"
        assert f"| {row.accuracy:.4f} | {row.keyword_clips} | {frr} |" in card
    assert "<script>" not in card and "evil\\|engine &lt;script&gt;" in card
    assert "\\[link\\]" in card
    assert "FRR at 0.5 false accepts per hour: 0.1250 (threshold 0.7000)" in card
    assert "| held-out voices | 0.9000 | n/a |" in card
    assert "160 clips by engine and source." in card
    assert "| voice | en-us+steph3 | GPL-3.0 |" in card


def _card_at(
    point: OperatingPoint | None, beside_peers: Sequence[dict] = (), training_start: str = ""
) -> str:
    return render_model_card(
        ModelCardInputs(
            model_name="tones",
            family="mfcc",
            keywords=LABELS[2:],
            intended_use="Detect two tones.",
            limitations=[],
            training_counts=[],
            evaluation={},
            target_fa_per_hour=1.0,
            frr_at_target=point.frr_at_target if point else None,
            threshold=0.7,
            group_metrics=[],
            licenses=[],
            operating_point=point,
            beside_peers=beside_peers,
            training_start=training_start,
        )
    )


def test_the_card_says_how_training_started_when_told() -> None:
    said = "Warm-started from its previous materialization (run r1): 3 labels kept, added up."
    assert escape_markdown(said) in _card_at(None, training_start=said)  # markdown-escaped
    assert "Warm-started" not in _card_at(None) and "from scratch" not in _card_at(None)


def test_the_card_states_the_operating_points_intervals_and_usability() -> None:
    point = OperatingPoint(
        threshold=0.7,
        smoothing_windows=3,
        refractory_seconds=1.0,
        target_fa_per_hour=1.0,
        frr_at_target=0.92,
        fa_per_hour_at_target=0.0,
        fa_per_hour_lower=0.0,
        fa_per_hour_upper=7.3778,
        frr_lower=0.74,
        frr_upper=0.99,
        confidence=0.95,
        negative_hours=0.5,
        keywords=25,
        target_met_on_validation=False,
        usable=False,
        usable_message="NOT USABLE: misses 92% of keywords <b>",
    )
    card = _card_at(point)
    assert (
        "FRR 0.9200 (95% interval 0.7400-0.9900, 25 keywords) at 0.0000 false accepts per hour "
        "(95% interval 0.0000-7.3778, 0.5 h of keyword-free audio)"
    ) in card
    assert "The target is not established" in card
    assert "**Not usable.** NOT USABLE: misses 92% of keywords &lt;b&gt;" in card
    fine = _card_at(point.model_copy(update={"usable": True, "target_met_on_validation": True}))
    assert "0.7400-0.9900" in fine and "Not usable" not in fine and "not established" not in fine
    # a manifest point without intervals (older evaluation) adds nothing
    bare = _card_at(
        OperatingPoint(
            threshold=0.7, smoothing_windows=3, refractory_seconds=1.0, target_fa_per_hour=1.0
        )
    )
    assert "interval" not in bare and "FRR at 1 false accepts per hour: n/a" in bare


def test_group_metrics_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="2 labels but 1 predictions"):
        speaker_group_metrics(["a", "b"], ["a"], {})
    with pytest.raises(ValueError, match="grouping 'engine' has 1 values for 2 clips"):
        speaker_group_metrics(["a", "b"], ["a", "b"], {"engine": ["x"]})
    with pytest.raises(ValueError, match="no clips"):
        speaker_group_metrics([], [], {})


def test_the_card_puts_the_model_beside_the_pretrained_models_of_its_phrase() -> None:
    row = {
        "system": "speech_embedding",
        "keyword": "hey jarvis",
        "set": "held-out engine festival",
        "positives": 18,
        "frr": 0.5,
        "frr_lower": 0.26,
        "frr_upper": 0.74,
        "fa_per_hour": 12.0,
        "fa_per_hour_lower": 2.47,
        "fa_per_hour_upper": 35.07,
        "level": 0.95,
    }
    peer = {**row, "system": "openWakeWord", "frr": 0.1111, "frr_lower": 0.0137}
    absent = {**row, "set": "letters", "positives": 0}
    card = _card_at(None, [row, peer, absent])
    assert "## Beside the pretrained models" in card
    assert (  # cells are escaped Markdown
        r"| held-out engine festival | hey jarvis | speech\_embedding | 18 | "
        r"50.0% \(26.0%-74.0%\) | 12 \(2.47-35.1\) |"
    ) in card
    assert r"| openWakeWord | 18 | 11.1% \(1.4%-74.0%\) |" in card
    assert r"| letters | hey jarvis | speech\_embedding | 0 | n/a |" in card
    assert "pretrained" not in _card_at(None)  # no phrase of a pretrained model: no section
