"""Warm starts from the previous materialization: the output rows mapped by label, and every
reason a previous checkpoint cannot be used giving a from-scratch start that says why."""

from __future__ import annotations

import pytest
import torch

from kws_assets.core.families.base import FamilySettings
from kws_assets.core.families.mfcc_dscnn import MFCC_DSCNN, feature_spec
from kws_assets.core.families.micro_wake_word import MICRO_WAKE_WORD
from kws_assets.core.families.speech_embedding import SPEECH_EMBEDDING
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.embedding_head import build_head
from kws_assets.core.model.networks import DSCNN
from kws_assets.core.model.streaming_net import StreamingKws, StreamingShape
from kws_assets.core.model.training import Replay, train_model
from kws_assets.core.model.warm_start import (
    WarmStart,
    describe,
    label_mapped_state,
    output_keys,
    seeded_state,
    warm_start_from,
)
from kws_assets.settings import FeatureSettings, ModelSettings, TrainSettings

BEFORE = ["_silence_", "_unknown_", "yes", "go"]
AFTER = ["_silence_", "_unknown_", "house", "yes"]  # go removed, house new, yes moved
SMALL = ModelSettings(n_filters=8, n_blocks=1)


def _settings(labels: list[str], **overrides: object) -> FamilySettings:
    return FamilySettings(labels=labels, **{"model": SMALL, **overrides})  # type: ignore[arg-type]


def _dscnn_checkpoint(settings: FamilySettings, seed: int = 1) -> ModelCheckpoint:
    """A DS-CNN checkpoint as kws_model stores it, stats from its train split."""
    torch.manual_seed(seed)
    net = DSCNN(len(settings.labels), settings.model)
    spec = feature_spec(settings)
    spec = spec.with_stats([0.1] * spec.n_mfcc, [2.0] * spec.n_mfcc)
    return ModelCheckpoint(
        family=MFCC_DSCNN.name,
        labels=list(settings.labels),
        state_dict=net.state_dict(),
        network=settings.model.model_dump(mode="json"),
        front_end=spec.model_dump(mode="json"),
    )


def test_kept_labels_keep_their_rows_a_new_label_gets_a_fresh_row_a_removed_one_is_dropped():
    previous = _dscnn_checkpoint(_settings(BEFORE))
    settings = _settings(AFTER)
    warm = MFCC_DSCNN.warm_start(settings, previous)
    assert warm.warm and warm.state is not None
    assert warm.kept == ("_silence_", "_unknown_", "yes")
    assert warm.added == ("house",) and warm.removed == ("go",)
    assert "house" in warm.reason and "go" in warm.reason
    old, fresh = previous.state_dict, MFCC_DSCNN.fresh_state(settings)
    for key in ("classifier.weight", "classifier.bias"):
        torch.testing.assert_close(warm.state[key][0], old[key][0])  # _silence_
        torch.testing.assert_close(warm.state[key][3], old[key][2])  # yes moved from row 2
        torch.testing.assert_close(warm.state[key][2], fresh[key][2])  # house: the fresh row
        assert not any(torch.equal(warm.state[key][i], old[key][3]) for i in range(4))  # go
    for key, value in old.items():  # everything below the output layer is the previous model
        if not key.startswith("classifier."):
            torch.testing.assert_close(warm.state[key], value)
    # the state loads into the network for the new labels, which trains from it
    DSCNN(len(AFTER), SMALL).load_state_dict(warm.state)


def test_the_same_labels_map_onto_themselves_and_the_stats_may_differ():
    settings = _settings(BEFORE)
    previous = _dscnn_checkpoint(settings)
    warm = MFCC_DSCNN.warm_start(settings, previous)  # its stats are not the fresh spec's
    assert warm.warm and warm.added == () and warm.removed == ()
    assert warm.state is not None
    for key, value in previous.state_dict.items():
        torch.testing.assert_close(warm.state[key], value)
    assert warm.as_dict() == {
        "warm": True,
        "reason": "from the previous checkpoint: 4 labels kept, the same labels",
        "labels_kept": 4,
        "labels_added": [],
        "labels_removed": [],
    }


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (_settings(AFTER, model=ModelSettings(n_filters=16, n_blocks=1)), "n_filters 8 -> 16"),
        (_settings(AFTER, features=FeatureSettings(n_mfcc=13)), "n_mfcc 10 -> 13"),
        (_settings(AFTER, train=TrainSettings(warm_from_previous=False)), "warm_from_previous"),
    ],
    ids=["wider network", "other front end", "switched off"],
)
def test_another_shape_or_front_end_trains_from_scratch_and_says_why(settings, reason):
    warm = MFCC_DSCNN.warm_start(settings, _dscnn_checkpoint(_settings(BEFORE)))
    assert not warm.warm and warm.state is None
    assert reason in warm.reason


def test_model_family_and_dropout_are_not_part_of_the_shape():
    before = _settings(BEFORE)
    update = {"family": "mfcc", "dropout": 0.0, "final_dropout": 0.1}
    after = _settings(AFTER, model=SMALL.model_copy(update=update))
    assert MFCC_DSCNN.warm_start(after, _dscnn_checkpoint(before)).warm


def test_no_previous_another_family_or_an_unusable_checkpoint_train_from_scratch():
    settings = _settings(AFTER)
    good = _dscnn_checkpoint(_settings(BEFORE))
    assert MFCC_DSCNN.warm_start(settings, None).reason == "no previous checkpoint"
    head = ModelCheckpoint(
        family=SPEECH_EMBEDDING.name,
        labels=BEFORE,
        state_dict={},
        network={},
        front_end={},
    )
    assert "'speech_embedding' model, not 'mfcc'" in MFCC_DSCNN.warm_start(settings, head).reason
    broken = [
        (ModelCheckpoint(**{**good.__dict__, "front_end": {"n_mfcc": "x"}}), "unusable"),
        (ModelCheckpoint(**{**good.__dict__, "network": None}), "unusable"),  # type: ignore[arg-type]
        (
            ModelCheckpoint(**{**good.__dict__, "state_dict": {"classifier.weight": 1}}),
            "other tensors",
        ),
        (
            ModelCheckpoint(
                **{**good.__dict__, "state_dict": {**good.state_dict, "classifier.bias": "?"}}
            ),
            "not a tensor",
        ),
        (ModelCheckpoint(**{**good.__dict__, "labels": ["a", "b", "c", "d"]}), "no label"),
        (ModelCheckpoint(**{**good.__dict__, "labels": BEFORE[:3]}), "rows for 3 labels"),
    ]
    for checkpoint, reason in broken:
        warm = MFCC_DSCNN.warm_start(settings, checkpoint)
        assert not warm.warm and reason in warm.reason, (reason, warm.reason)


def test_a_hidden_tensor_of_another_shape_is_a_reason_not_an_error():
    fresh = {"body.weight": torch.zeros(3, 2), "out.weight": torch.zeros(2, 3)}
    previous = {"body.weight": torch.ones(4, 2), "out.weight": torch.ones(2, 3)}
    warm = label_mapped_state(previous, ["a", "b"], fresh, ["a", "b"])
    assert warm == WarmStart.from_scratch("body.weight changed shape: (4, 2) -> (3, 2)")
    previous = {"body.weight": torch.ones(3, 2), "out.weight": torch.ones(2, 4)}
    warm = label_mapped_state(previous, ["a", "b"], fresh, ["a", "b"])
    assert "output layer out.weight changed shape" in warm.reason


def test_a_signature_function_that_fails_is_a_reason_not_an_error():
    def explode(_checkpoint: ModelCheckpoint) -> dict[str, object]:
        raise KeyError("shape")

    warm = warm_start_from(
        _dscnn_checkpoint(_settings(BEFORE)), {"family": "mfcc"}, explode, AFTER, dict
    )
    assert not warm.warm and "unusable" in warm.reason and "shape" in warm.reason


def test_the_output_layer_is_the_last_module_of_every_network():
    shape = StreamingShape.from_dict(_micro_shape(_settings(BEFORE)))
    assert output_keys(DSCNN(4, SMALL).state_dict()) == ("classifier.weight", "classifier.bias")
    assert output_keys(build_head("dnn", 16, 96, 4).state_dict()) == (
        "layers.10.weight",
        "layers.10.bias",
    )
    assert output_keys(build_head("conv", 16, 96, 4).state_dict()) == (
        "classifier.weight",
        "classifier.bias",
    )
    assert output_keys(StreamingKws(shape).state_dict()) == (
        "classifier.weight",
        "classifier.bias",
    )


def test_a_card_sentence_says_where_training_started():
    warm = MFCC_DSCNN.warm_start(_settings(AFTER), _dscnn_checkpoint(_settings(BEFORE)))
    info = warm.as_dict() | {"from": {"run_id": "r1", "materialized_at": "2026-12-06T21:00:00"}}
    assert describe(info) == (
        "Warm-started from its previous materialization (run r1, materialized "
        "2026-12-06T21:00:00): 3 labels kept, added house, removed go."
    )
    scratch = WarmStart.from_scratch("no previous checkpoint").as_dict()
    assert describe(scratch) == (
        "Trained from scratch, not from a previous materialization (no previous checkpoint)."
    )
    assert describe(scratch | {"started_from": "kws_model"}).startswith(
        "Started from kws_model's weights, not from a previous materialization"
    )
    assert describe({}) == ""


def test_fresh_rows_are_seeded_and_leave_the_global_generator_alone():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    first = seeded_state(lambda: DSCNN(4, SMALL), seed=3)
    assert torch.equal(torch.rand(1), before)
    second = seeded_state(lambda: DSCNN(4, SMALL), seed=3)
    torch.testing.assert_close(first, second)


def test_the_head_and_the_streaming_family_map_their_labels_too():
    before, after = _settings(BEFORE), _settings([*AFTER, "up"])  # and one more class
    for family in (SPEECH_EMBEDDING, MICRO_WAKE_WORD):
        fresh = family.fresh_state(before)
        network = (
            {**SPEECH_EMBEDDING.signature(before)["network"]}  # type: ignore[index]
            if family is SPEECH_EMBEDDING
            else {"shape": StreamingShape.from_dict(_micro_shape(before)).as_dict()}
        )
        previous = ModelCheckpoint(
            family=family.name,
            labels=BEFORE,
            state_dict=fresh,
            network=network,
            front_end=family.signature(before)["front_end"],  # type: ignore[index]
        )
        warm = family.warm_start(after, previous)
        assert warm.warm, (family.name, warm.reason)
        assert warm.added == ("house", "up") and warm.removed == ("go",)
        assert warm.state is not None
        out = output_keys(warm.state)[0]
        assert warm.state[out].shape[0] == 5
        torch.testing.assert_close(warm.state[out][3], fresh[out][2])  # yes
        wider = _settings(AFTER, embedding=before.embedding.model_copy(update={"width": 64}))
        wider = (
            wider
            if family is SPEECH_EMBEDDING
            else _settings(AFTER, micro=before.micro.model_copy(update={"channels": 16}))
        )
        assert not family.warm_start(wider, previous).warm


def _micro_shape(settings: FamilySettings) -> dict[str, object]:
    from kws_assets.core.families.micro_wake_word import network_shape

    return network_shape(settings, len(settings.labels)).as_dict()


def test_a_warm_replay_trains_every_row_of_an_added_label_and_a_share_of_the_rest():
    warm = MFCC_DSCNN.warm_start(_settings(AFTER), _dscnn_checkpoint(_settings(BEFORE)))
    assert warm.replay(AFTER, 1.0) is None  # every row, every epoch
    assert WarmStart.from_scratch("none").replay(AFTER, 0.3) is None
    replay = warm.replay(AFTER, 0.3)
    assert replay is not None and replay.focus == {AFTER.index("house")}
    y = torch.tensor([0, 1, 2, 3] * 500)
    generator = torch.Generator().manual_seed(0)
    first, second = replay.rows(y, generator), replay.rows(y, generator)
    assert first[y == 2].all()  # house: all of its rows
    others = first[y != 2].float().mean().item()
    assert 0.25 < others < 0.35
    assert not torch.equal(first, second)  # a fresh draw each epoch


def test_a_warm_training_with_replay_sees_fewer_rows_per_epoch():
    rng = torch.Generator().manual_seed(0)
    x = torch.randn(400, 49, 10, generator=rng).numpy()
    y = (torch.arange(400) % 4).numpy()
    seen: list[int] = []

    def factory() -> torch.nn.Module:
        net = DSCNN(4, SMALL)
        net.register_forward_hook(
            lambda m, i, o: seen.append(i[0].shape[0]) if m.training else None
        )
        return net

    settings = TrainSettings(max_epochs=2, min_epochs=1, batch_size=50)
    for replay in (None, Replay.of(["house"], AFTER, 0.25)):
        seen.clear()
        train_model(
            x, y, x[:40], y[:40], AFTER, SMALL, settings, model_factory=factory, replay=replay
        )
        rows = sum(seen) / 2
        assert min(seen) > 0  # no empty batch past the rows an epoch draws
        if replay is None:
            assert rows == 400
        else:  # every house row (100) and about a quarter of the other 300
            assert 150 < rows < 200
