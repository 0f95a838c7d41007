"""A model family added by one module: a toy family (frame energies, a linear layer) declared in
this file alone, registered in the test's registry, materialized through table -> model ->
artifact by the same asset factory the shipped families use, and loaded back by the registry's
``load_classifier`` to classify a clip.  Nothing else in the package knows it exists."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
import pytest
import torch
from torch import nn

from kws_assets.core.audio.io import write_wav
from kws_assets.core.families import REGISTRY, Registry, families
from kws_assets.core.families.base import (
    AssetText,
    Family,
    FamilySettings,
    HeldOut,
    Log,
    Trained,
)
from kws_assets.core.families.mfcc_dscnn import MFCC_DSCNN
from kws_assets.core.features.loader import training_data
from kws_assets.core.features.table import TableFrontEnd, TableStats
from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.training import train_model
from kws_assets.core.model.warm_start import seeded_state, warm_signature
from kws_assets.core.onnx_session import cpu_session
from kws_assets.core.ship.export import (
    FRONT_END_FILE,
    ArtifactFile,
    ClipClassifier,
    model_file,
    onnx_logits,
    recorded_family,
    softmax,
)
from kws_assets.core.storage.artifact_store import ArtifactFolder
from kws_assets.defs.assets.evaluate import evaluation_asset
from kws_assets.lib.family_assets import family_assets, table_asset
from kws_assets.lib.resources import CLIPS, KwsSettings, local_storage_resources

SR = 16000
FRAMES = 10  # 100 ms frames of a 1-s clip
KEYWORDS = ("yes", "no")


@dataclass(frozen=True)
class EnergySpec:
    sample_rate: int
    clip_samples: int

    @property
    def shape(self) -> tuple[int, int]:
        return (FRAMES, 1)


def frame_energies(clips: np.ndarray) -> np.ndarray:
    """``[n, FRAMES, 1]``: the RMS of each tenth of each clip."""
    frames = clips[:, : clips.shape[1] // FRAMES * FRAMES].reshape(len(clips), FRAMES, -1)
    return np.sqrt((frames**2).mean(axis=2, keepdims=True)).astype(np.float32) * 10.0


class EnergyClassifier(ClipClassifier):
    def __init__(self, folder: Path, precision: str) -> None:
        self.session = cpu_session(model_file(folder, precision))
        self.labels = json.loads((folder / "labels.json").read_text())
        front = json.loads((folder / FRONT_END_FILE).read_text())
        self.spec = EnergySpec(front["sample_rate"], front["clip_samples"])

    def classify_clips(self, clips: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        x = frame_energies(np.stack([np.asarray(c, np.float32) for c in clips]))
        return softmax(self.session.run(None, {"energy": x})[0])


class FrameEnergyFamily(Family):
    name = "toy_frame_energy"
    column = "energy"
    input_name = "energy"
    table = AssetText("toy_energy_table", "Frame energies of every clip.", frozenset({"numpy"}))
    model = AssetText("toy_energy_model", "A linear layer on them.", frozenset({"pytorch"}))
    artifact = AssetText("toy_energy_artifact", "Its int8 ONNX.", frozenset({"onnx"}))

    def front_end(self, settings: FamilySettings) -> TableFrontEnd:
        spec = EnergySpec(settings.audio.sample_rate, settings.audio.clip_samples)
        return TableFrontEnd(
            spec=spec,
            column=self.column,
            shape=spec.shape,
            features=frame_energies,
            cache_key="v1",
            cache_name="toy-energy",
            staging_prefix="toy_energy_table-",
        )

    def table_metadata(self, front_end: TableFrontEnd, stats: TableStats) -> dict[str, Any]:
        return {"frames": FRAMES}

    def _linear(self, n_classes: int) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Linear(FRAMES, n_classes))

    def network(self, checkpoint: ModelCheckpoint) -> nn.Module:
        model = self._linear(len(checkpoint.labels))
        model.load_state_dict(checkpoint.state_dict)
        return model.eval()

    def signature(self, settings: FamilySettings) -> dict[str, Any]:
        return warm_signature(self.name, {"frames": FRAMES}, {"rate": settings.audio.sample_rate})

    def checkpoint_signature(self, checkpoint: ModelCheckpoint) -> dict[str, Any]:
        rate = checkpoint.front_end["sample_rate"]
        return warm_signature(checkpoint.family, {"frames": FRAMES}, {"rate": rate})

    def fresh_state(self, settings: FamilySettings) -> dict[str, torch.Tensor]:
        return seeded_state(lambda: self._linear(len(settings.labels)), settings.train.seed)

    def train(
        self,
        settings: FamilySettings,
        table: pl.LazyFrame,
        log: Log,
        previous: ModelCheckpoint | None = None,
    ) -> Trained:
        assert isinstance(table, pl.LazyFrame)  # the IO manager hands the table over as a scan
        data = training_data(table, settings.labels, settings.train, column=self.column)
        warm = self.warm_start(settings, previous)
        result = train_model(
            **data.train_inputs(),
            labels=settings.labels,
            model_settings=settings.model,
            train_settings=settings.train.warm() if warm.warm else settings.train,
            augment=None,
            model_factory=lambda: self._linear(len(settings.labels)),
            log=log,
            initial_state=warm.state,
        )
        return Trained.scored(
            result,
            data,
            lambda accuracy: ModelCheckpoint(
                family=self.name,
                labels=settings.labels,
                state_dict=result.model.state_dict(),
                network={},
                front_end={"sample_rate": settings.audio.sample_rate},
                accuracy=accuracy,
            ),
            {"warm_start": warm.as_dict()},
        )

    def spec_shape(self, checkpoint: ModelCheckpoint) -> tuple[int, ...]:
        return (FRAMES, 1)

    def held_out(self, checkpoint: ModelCheckpoint, table: pl.LazyFrame) -> HeldOut:
        assert isinstance(table, pl.LazyFrame)
        return super().held_out(checkpoint, table)

    def artifact_files(
        self, checkpoint: ModelCheckpoint, int8_path: Path
    ) -> Mapping[str, ArtifactFile]:
        rate = checkpoint.front_end["sample_rate"]
        spec = {"family": self.name, "sample_rate": rate, "clip_samples": rate}
        return {FRONT_END_FILE: json.dumps(spec)}

    def load_classifier(
        self, folder: Path, threads: int | None = None, precision: str = "int8"
    ) -> ClipClassifier:
        return EnergyClassifier(folder, precision)

    def owns_folder(self, folder: Path) -> bool:
        return recorded_family(folder) == self.name


TOY = FrameEnergyFamily()


def _clip(label: str, rng: np.random.Generator) -> np.ndarray:
    """Silence is quiet, ``yes`` is loud early, ``no`` loud late, ``_unknown_`` loud throughout."""
    loud = {"_silence_": (0, 0), "yes": (0, 5), "no": (5, 10), "_unknown_": (0, 10)}[label]
    audio = rng.standard_normal(SR).astype(np.float32) * 0.005
    start, stop = (i * SR // FRAMES for i in loud)
    audio[start:stop] *= 60.0
    return audio


@pytest.fixture
def project(tmp_path: Path) -> tuple[KwsSettings, pl.DataFrame, list[str]]:
    config = tmp_path / "kws.yaml"
    config.write_text(
        f"keywords: [{', '.join(KEYWORDS)}]\n"
        "train: {max_epochs: 40, min_epochs: 10, batch_size: 8, threads: 1, "
        "learning_rate: 0.05}\n"
        "quantize: {calibration_rows: 16}\n"
        "evaluation: {negative_minutes: 0.5, positives_per_keyword: 6, threshold_steps: 25, "
        "held_out_voices: [en+michel], target_fa_per_hour: 60.0}\n"
        f"storage: {{root: {tmp_path / 'data'}}}\n"
    )
    settings = KwsSettings(config_path=str(config))
    labels = settings.config.labels
    rng = np.random.default_rng(0)
    rows = []
    for i in range(48):
        label, split = labels[i % len(labels)], ("train", "train", "val", "test")[i // 4 % 4]
        path = settings.config.storage_path(CLIPS) / f"{i:02d}.wav"  # in the clip store
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, _clip(label, rng), SR)
        rows.append(
            {
                "clip_id": f"c{i:02d}",
                "uri": str(path),
                "label": label,
                "split": split,
                "speaker": f"s{i % 3}",
                "source": "test",
            }
        )
    return settings, pl.DataFrame(rows), labels


def _sources(clips: pl.DataFrame) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    """``validated_set`` (the project's clips) and an empty ``augmented_clips``: the family
    assets' inputs, standing in for the graph upstream of them."""

    @dg.asset(name="validated_set")
    def validated_set() -> pl.DataFrame:
        return clips

    @dg.asset(name="augmented_clips")
    def augmented_clips() -> pl.DataFrame:
        return clips.head(0)

    return validated_set, augmented_clips


def test_a_toy_family_materializes_table_model_artifact_and_classifies(project, tmp_path):
    settings, clips, labels = project

    validated_set, augmented_clips = _sources(clips)

    defs = dg.Definitions(
        assets=[validated_set, augmented_clips, *family_assets(TOY)],
        resources={"settings": settings, **local_storage_resources(settings.config)},
    )
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [validated_set, augmented_clips, *family_assets(TOY)],
        resources={"settings": settings, **local_storage_resources(settings.config)},
        instance=instance,
    )
    assert result.success
    table_meta = result.asset_materializations_for_node(TOY.table.key)[0].metadata
    assert table_meta["rows"].value == len(clips) and table_meta["frames"].value == FRAMES
    model_meta = result.asset_materializations_for_node(TOY.model.key)[0].metadata
    assert model_meta["accuracy_test"].value >= 0.75, model_meta
    artifact = defs.load_asset_value(TOY.artifact.key, instance=instance)
    assert isinstance(artifact, ArtifactFolder)
    assert (artifact.path / "model.int8.onnx").is_file()
    assert (artifact.path / "model.float.onnx").is_file()

    registry = Registry([*families(), TOY])  # the test's registry: the shipped ones + the toy
    assert registry.family_of_folder(artifact.path) is TOY
    classifier = registry.load_classifier(artifact.path)
    loud_early = _clip("yes", np.random.default_rng(99))
    probs = classifier.classify_clips([loud_early])
    assert labels[int(probs.argmax())] == "yes"
    wav = tmp_path / "one.wav"
    write_wav(wav, loud_early, SR)
    assert classifier.classify_files([wav])[0]["label"] == "yes"
    # the classifier runs the same int8 graph the table's features went into
    np.testing.assert_allclose(
        probs,
        softmax(onnx_logits(artifact.path / "model.int8.onnx", frame_energies(loud_early[None]))),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="unknown model family 'toy_frame_energy'"):
        REGISTRY.family_of_folder(artifact.path)  # the shipped registry never saw it


def test_a_second_materialization_starts_from_the_first_and_says_so(project):
    """The model asset's re-run finds its previous materialization in the instance, loads the
    checkpoint its IO manager stored and trains from it on the warm budget; the metadata names
    the run it came from.  An unreadable stored checkpoint trains from scratch and says why."""
    settings, clips, labels = project

    validated_set, augmented_clips = _sources(clips)

    assets = [validated_set, augmented_clips, *family_assets(TOY)[:2]]
    resources = {"settings": settings, **local_storage_resources(settings.config)}
    instance = dg.DagsterInstance.ephemeral()

    def model_metadata() -> tuple[str, dict[str, Any]]:
        result = dg.materialize(assets, resources=resources, instance=instance)
        assert result.success
        meta = result.asset_materializations_for_node(TOY.model.key)[0].metadata
        stored = dg.Definitions(assets=assets, resources=resources).load_asset_value(
            TOY.model.key, instance=instance
        )
        assert stored.warm_start == meta["warm_start"].value  # what the model card reads
        return result.run_id, {k: v.value for k, v in meta.items()}

    first_run, first = model_metadata()
    assert first["warm_started"] is False
    assert first["warm_start"] == {
        "warm": False,
        "reason": f"no previous materialization of {TOY.model.key}",
    }
    _, second = model_metadata()
    warm = settings.config.train.warm_epochs
    assert second["warm_started"] is True, second["warm_start"]
    assert second["warm_start"]["from"]["run_id"] == first_run
    assert second["warm_start"]["from"]["path"].endswith(f"{TOY.model.key}.pt")
    assert second["warm_start"]["labels_kept"] == len(labels)
    assert second["epochs_run"] <= warm.max_epochs < first["epochs_run"]
    assert second["accuracy_test"] >= 0.75

    stored = Path(second["warm_start"]["from"]["path"])
    stored.write_bytes(b"not a checkpoint")
    _, third = model_metadata()
    assert third["warm_started"] is False
    assert "the previous checkpoint is unreadable" in third["warm_start"]["reason"]
    assert third["epochs_run"] > warm.max_epochs


def test_a_temporary_registration_is_undone():
    before = REGISTRY.names()
    with REGISTRY.registered(TOY):
        assert REGISTRY.get(TOY.name) is TOY and REGISTRY.names() == (*before, TOY.name)
    assert REGISTRY.names() == before


@pytest.mark.slow
def test_the_toy_family_goes_on_through_the_evaluation(project, tmp_path):
    """The evaluation asset built over a registry holding only the toy family takes the toy's
    artifact as its one input and writes the toy's report and operating point: nothing in the
    package was edited for it.  (The MFCC table comes along: the evaluation reads the training
    speakers and the synthetic-vs-real distance from it.)"""
    settings, clips, _ = project

    validated_set, augmented_clips = _sources(clips)

    toy_evaluation = evaluation_asset(Registry([TOY]))
    assert set(toy_evaluation.keys_by_input_name) == {
        "mfcc_table",
        "validated_set",
        TOY.artifact.key,
    }
    assets = [
        validated_set,
        augmented_clips,
        table_asset(MFCC_DSCNN),
        *family_assets(TOY),
        toy_evaluation,
    ]
    resources = {"settings": settings, **local_storage_resources(settings.config)}
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(assets, resources=resources, instance=instance)
    assert result.success
    meta = result.asset_materializations_for_node("evaluation")[0].metadata
    assert 0.0 <= meta["test_accuracy"].value <= 1.0
    report = dg.Definitions(assets=assets, resources=resources).load_asset_value(
        "evaluation", instance=instance
    )
    evaluation = json.loads((report.path / "evaluation.json").read_text())
    assert list(evaluation["families"]) == [TOY.name]
    assert (report.path / TOY.name / "operating_point.json").is_file()
