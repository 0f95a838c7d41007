"""The connector registry: a connector is one module that registers itself; ``list_source``
dispatches on the source's ``kind`` (a toy connector in a test registry is listed like the real
ones, an unknown kind is a clear error), and the settings' ``CorpusSource`` union (settings cannot
read the registry) holds exactly the registered kinds."""

from __future__ import annotations

import typing
from typing import Literal

import pytest
from upath import UPath

from kws_assets.core.corpus.connectors import (
    REGISTRY,
    ConnectorRegistry,
    CorpusEntry,
    ListRequest,
    UnknownConnectorError,
    list_source,
)
from kws_assets.core.corpus.connectors.registry import Listing, kind_of
from kws_assets.core.licenses import component_license
from kws_assets.settings import (
    CorpusSource,
    DemoCorpusSource,
    IngestSettings,
    ManifestSource,
    StrictSettings,
)


class ToySource(StrictSettings):
    kind: Literal["toy"] = "toy"
    name: str = "toy"
    root: str = "."


def list_toy(source: ToySource, root: UPath, request: ListRequest) -> Listing:
    """One entry per keyword, as if the corpus said each once."""
    entries = [
        CorpusEntry(source.name, f"{k}.wav", k, "toy-speaker", request.default_language, "CC0")
        for k in request.keywords
    ]
    return entries, []


def toy_registry() -> ConnectorRegistry:
    registry = ConnectorRegistry()
    registry.register(ToySource, lister=list_toy, module=__name__)
    return registry


def test_a_toy_connector_dispatches_through_list_source(tmp_path):
    registry = toy_registry()
    entries, problems = list_source(
        ToySource(), UPath(tmp_path), ["yes", "no"], "en", registry=registry
    )
    assert [(e.original_path, e.transcript, e.language) for e in entries] == [
        ("yes.wav", "yes", "en"),
        ("no.wav", "no", "en"),
    ]
    assert problems == []
    assert registry.kinds() == ("toy",) and "toy" not in REGISTRY.kinds()


def test_an_unknown_kind_is_a_clear_error(tmp_path):
    with pytest.raises(UnknownConnectorError, match="no corpus connector for source kind 'toy'"):
        list_source(ToySource(), UPath(tmp_path), [], "en")
    manifest = ManifestSource(name="m", root=str(tmp_path))
    with pytest.raises(UnknownConnectorError, match=r"kind 'manifest'.*kinds: \['toy'\]"):
        list_source(manifest, UPath(tmp_path), [], "en", registry=toy_registry())


def test_a_generated_kind_and_mismatched_settings_are_refused(tmp_path):
    demo = DemoCorpusSource()
    with pytest.raises(UnknownConnectorError, match="generated, not listed"):
        list_source(demo, UPath(tmp_path), [], "en")
    impostor = ToySource.model_construct(kind=kind_of(ManifestSource))
    with pytest.raises(UnknownConnectorError, match="expects ManifestSource"):
        list_source(impostor, UPath(tmp_path), [], "en")


def test_the_registry_refuses_a_kind_twice_and_a_settings_class_without_a_kind():
    registry = toy_registry()
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(ToySource, lister=list_toy, module=__name__)
    with pytest.raises(ValueError, match="`kind` field"):
        registry.register(IngestSettings, lister=list_toy, module=__name__)


def test_settings_source_union_is_the_registered_connectors():
    """A connector module missing from settings' CorpusSource, or a settings source class no
    module registers, fails here."""
    union = typing.get_args(typing.get_args(CorpusSource)[0])
    assert {kind_of(settings) for settings in union} == set(REGISTRY.kinds())
    assert {entry.settings for entry in REGISTRY} == set(union)


def test_a_connector_licence_is_its_sources_default_licence():
    declared = [entry for entry in REGISTRY if entry.license is not None]
    assert declared
    for entry in declared:
        assert entry.module.startswith("kws_assets.core.corpus.connectors."), entry.kind
        default = entry.settings.model_fields["license"].default
        assert component_license(entry.kind).license == entry.license.license == default
