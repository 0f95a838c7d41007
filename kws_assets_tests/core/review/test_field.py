"""The field false-wake rate: confirmed false wakes are the rows counted; a model retrained with
them as negatives fires less on that kind of sound than the model that fired on them; the model
card says both numbers.

The retrain is the tone task's (kws_assets_tests/tone_task.py: a small DS-CNN in seconds) with
``chirp`` as the keyword: the "television" plays a warbling tone (1.2 kHz, +-0.8 kHz at 6 Hz)
the deployed model takes for the rising chirp.  Confirmed uploads join the negatives
(``noise_burst``, the task's not-a-keyword class) and the model is retrained; the rate is
measured on fresh warbles, so it is about the sound and not the memorised clips."""

from __future__ import annotations

import numpy as np
import polars as pl

from kws_assets.core.features.mfcc import MfccExtractor, normalize
from kws_assets.core.model.training import predict_logits, train_model
from kws_assets.core.review.field import confirmed_false_wakes, false_wake_rate
from kws_assets.core.ship.model_card import ModelCardInputs, render_model_card
from kws_assets_tests.tone_task import (
    FAST_TRAIN,
    SMALL_MODEL,
    TONE_LABELS,
    trained_tone_model,
    warbles,
)

KEYWORD = "chirp"
NEGATIVE = TONE_LABELS.index("noise_burst")


def rows(n: int, split: str = "train", review: str | None = "keep") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "clip_id": [f"f{i}" for i in range(n)],
            "split": [split] * n,
            "field_tag": ["false_wake"] * n,
            "review": [review] * n,
        }
    )


def test_only_confirmed_false_wakes_count():
    table = pl.concat([rows(2), rows(1, review=None).with_columns(pl.lit("u").alias("clip_id"))])
    table = pl.concat([table, rows(1).with_columns(pl.lit("missed_wake").alias("field_tag"))])
    assert confirmed_false_wakes(table).height == 2
    assert false_wake_rate(rows(0), [], [KEYWORD]) is None


def test_a_model_retrained_on_confirmed_false_wakes_fires_less_on_them():
    task, deployed, _ = trained_tone_model()
    extractor = MfccExtractor(task.spec)

    def fires(model: object, clips: np.ndarray) -> list[str]:
        logits = predict_logits(model, normalize(extractor(clips), task.spec))  # type: ignore[arg-type]
        return [TONE_LABELS[i] for i in logits.argmax(axis=1)]

    uploads = warbles(80, seed=1)
    fresh = warbles(40, seed=2)
    fired = fires(deployed.model, uploads)
    # what devices upload: the clips the deployed model fired on
    uploaded = uploads[[label == KEYWORD for label in fired]]
    assert len(uploaded) >= 10, f"the deployed model fired on only {len(uploaded)} of 80"
    before = false_wake_rate(rows(len(fresh)), fires(deployed.model, fresh), [KEYWORD])

    x_new = normalize(extractor(uploaded), task.spec)
    retrained = train_model(
        np.concatenate([task.x_train, x_new]),
        np.concatenate([task.y_train, np.full(len(x_new), NEGATIVE)]),
        task.x_val,
        task.y_val,
        TONE_LABELS,
        SMALL_MODEL,
        FAST_TRAIN,
    )
    after = false_wake_rate(rows(len(fresh)), fires(retrained.model, fresh), [KEYWORD])
    assert before is not None and after is not None
    print(
        f"field false wakes: {len(uploaded)} of 80 uploaded; on 40 fresh ones the deployed "
        f"model fires on {before.fired_after}, the retrained one on {after.fired_after}"
    )
    assert after.fired_after < before.fired_after / 2, (before, after)
    # ...and it still knows the keyword
    test_chirps = task.clips_test[task.y_test == TONE_LABELS.index(KEYWORD)]
    assert np.mean([label == KEYWORD for label in fires(retrained.model, test_chirps)]) > 0.8

    card = render_model_card(
        ModelCardInputs(
            model_name="tones",
            family="mfcc",
            keywords=[KEYWORD],
            intended_use="tests",
            limitations=[],
            training_counts=[],
            evaluation={},
            target_fa_per_hour=1.0,
            frr_at_target=None,
            threshold=None,
            group_metrics=[],
            licenses=[],
            field_false_wakes=after,
        )
    )
    assert "## Field false wakes" in card
    assert (
        f"fired on {len(fresh)} of them (100%); this model fires (top-1 is a keyword) on "
        f"{after.fired_after} ({after.rate_after:.0%})"
    ) in card
