"""The tone task's classifier, hand-built evaluation material and the results of evaluating it
under two family names, shared by the evaluation tests (one evaluation per test session)."""

from __future__ import annotations

import pytest

from kws_assets.core.evaluation.family import EvaluationResult, evaluate_families
from kws_assets.core.evaluation.material import EvaluationMaterial
from kws_assets.core.ship.export import KwsClassifier
from kws_assets.settings import EvalSettings
from kws_assets_tests.core.evaluation.tone_streams import tone_material
from kws_assets_tests.tone_detector import LABELS, labelled_clips, tone_artifact

SETTINGS = EvalSettings(threshold_steps=25, target_fa_per_hour=60.0)
FAMILIES = ("first", "second")
"""Two names for the same classifier: the evaluation and its report never look at the name."""


@pytest.fixture(scope="session")
def tone_classifier() -> KwsClassifier:
    return KwsClassifier.load_mfcc(tone_artifact().folder)


@pytest.fixture(scope="session")
def material() -> EvaluationMaterial:
    return tone_material()


@pytest.fixture(scope="session")
def tone_test_clips():
    return labelled_clips(3, seed=60)


@pytest.fixture(scope="session")
def results(tone_classifier, material, tone_test_clips) -> dict[str, EvaluationResult]:
    clips, y = tone_test_clips
    return evaluate_families(
        dict.fromkeys(FAMILIES, lambda: tone_classifier),
        SETTINGS,
        material,
        [LABELS[i] for i in y],
        lambda: iter([clips[:5], clips[5:]]),
    )
