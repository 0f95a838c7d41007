"""The family registry: names equal the settings Literal, lookups fail clearly, a folder finds
its family, and every family's assets have keys of their own."""

from __future__ import annotations

import json
from typing import get_args

import pytest

from kws_assets.core.families import (
    REGISTRY,
    Registry,
    artifact_assets,
    families,
    family_of_folder,
    get_family,
)
from kws_assets.core.families.mfcc_dscnn import MFCC_DSCNN, MfccDscnn
from kws_assets.core.families.micro_wake_word import MICRO_WAKE_WORD
from kws_assets.core.families.speech_embedding import SPEECH_EMBEDDING
from kws_assets.core.ship.export import FRONT_END_FILE
from kws_assets.settings.model import ModelFamily


def test_the_settings_literal_names_exactly_the_registered_families():
    assert sorted(get_args(ModelFamily)) == sorted(REGISTRY.names())


def test_families_come_in_a_stable_order_with_their_asset_keys():
    assert families() == (MFCC_DSCNN, SPEECH_EMBEDDING, MICRO_WAKE_WORD)
    assert artifact_assets() == {
        MFCC_DSCNN.name: "quantized_model",
        SPEECH_EMBEDDING.name: "embedding_artifact",
        MICRO_WAKE_WORD.name: "micro_artifact",
    }
    assert [(f.table.key, f.model.key) for f in families()] == [
        ("mfcc_table", "kws_model"),
        ("embedding_table", "embedding_model"),
        ("micro_table", "micro_model"),
    ]


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model family 'wav2vec'.*mfcc.*speech_embedding"):
        get_family("wav2vec")


def test_a_name_or_an_asset_key_cannot_be_registered_twice():
    registry = Registry([MFCC_DSCNN])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(MFCC_DSCNN)

    class Renamed(MfccDscnn):
        name = "renamed"

    with pytest.raises(ValueError, match="asset keys"):
        registry.register(Renamed())
    assert registry.names() == (MFCC_DSCNN.name,)


def test_a_folder_names_its_family(tmp_path):
    assert family_of_folder(tmp_path) is MFCC_DSCNN  # no front_end.json: the MFCC layout
    (tmp_path / FRONT_END_FILE).write_text(json.dumps({"family": SPEECH_EMBEDDING.name}))
    assert family_of_folder(tmp_path) is SPEECH_EMBEDDING
    (tmp_path / FRONT_END_FILE).write_text(json.dumps({"family": "wav2vec"}))
    with pytest.raises(ValueError, match="unknown model family 'wav2vec'"):
        family_of_folder(tmp_path)
    assert not Registry().names()
    with pytest.raises(ValueError, match="unknown model family"):
        Registry().family_of_folder(tmp_path)


def test_a_config_selects_families_in_registry_order_teachers_included():
    chosen = REGISTRY.selected(["micro_wake_word", "speech_embedding"])
    assert chosen.names() == (SPEECH_EMBEDDING.name, MICRO_WAKE_WORD.name)
    assert chosen.artifact_assets() == {
        SPEECH_EMBEDDING.name: "embedding_artifact",
        MICRO_WAKE_WORD.name: "micro_artifact",
    }
    assert REGISTRY.selected(REGISTRY.names()).names() == REGISTRY.names()
    with pytest.raises(ValueError, match="learns from the speech_embedding family"):
        REGISTRY.selected(["micro_wake_word"])  # its teacher is missing
    with pytest.raises(ValueError, match="unknown model family 'dscnn'"):
        REGISTRY.selected(["speech_embedding", "dscnn"])
