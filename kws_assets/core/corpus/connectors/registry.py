"""The corpus connector registry: each connector module declares itself here when imported.

Why: adding a layout used to mean editing four places (its module, an isinstance chain and a
union in ``list_source``, the settings union, the settings facade).  Now the connector's module
registers its settings class (whose ``kind`` default names the connector, as ``kws.yaml`` spells
it), its lister and, where it has one, the licence its sources default to; ``list_source``
dispatches on ``source.kind`` through this registry.  ``settings/`` is a leaf and cannot read it,
so its ``CorpusSource`` union is checked against the registry by a test instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from upath import UPath

from kws_assets.core.corpus.connectors.base import CorpusEntry, EntryProblem
from kws_assets.core.license_terms import LicenseTerms
from kws_assets.settings import IngestSettings

Listing = tuple[list[CorpusEntry], list[EntryProblem]]


@dataclass(frozen=True)
class ListRequest:
    """What listing a source may depend on besides the source and its root: the keywords
    (labelled layouts label by them), the config language (for rows that name none) and the
    ingest limits (manifests are streamed under them)."""

    keywords: list[str]
    default_language: str
    limits: IngestSettings


Lister = Callable[[Any, UPath, ListRequest], Listing]
"""``(source settings, root, request) -> (entries, problems)``; the source is the registered
settings class (typed Any so each connector's lister can name its own class)."""


class UnknownConnectorError(LookupError):
    """A source whose ``kind`` no connector registered (or that cannot be listed as it is)."""


@dataclass(frozen=True)
class ConnectorRegistration:
    """One connector as its module declares it.  ``lister`` None: a generated corpus that its
    module writes out and turns into a listable source first (the demo corpus)."""

    kind: str
    settings: type[BaseModel]
    lister: Lister | None
    module: str
    license: LicenseTerms | None = None


def kind_of(settings: type[BaseModel]) -> str:
    """The connector kind a settings class names: the default of its ``kind`` field."""
    field = settings.model_fields.get("kind")
    kind = field.default if field is not None else None
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"{settings.__qualname__} needs a `kind` field with a string default")
    return kind


class ConnectorRegistry:
    """Connector registrations by kind, in registration order."""

    def __init__(self) -> None:
        self._entries: dict[str, ConnectorRegistration] = {}

    def register(
        self,
        settings: type[BaseModel],
        *,
        lister: Lister | None,
        module: str,
        license: LicenseTerms | None = None,
    ) -> ConnectorRegistration:
        """Add the connector for ``settings`` (its kind is the settings' ``kind`` default);
        ``module`` is the declaring module's ``__name__``.  A kind registered twice is an
        error, not a silent replacement."""
        kind = kind_of(settings)
        if kind in self._entries:
            raise ValueError(
                f"corpus connector {kind!r} registered twice ({self._entries[kind].module} and "
                f"{module})"
            )
        entry = ConnectorRegistration(kind, settings, lister, module, license)
        self._entries[kind] = entry
        return entry

    def __iter__(self) -> Iterator[ConnectorRegistration]:
        return iter(self._entries.values())

    def kinds(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def get(self, kind: str) -> ConnectorRegistration:
        try:
            return self._entries[kind]
        except KeyError:
            raise UnknownConnectorError(
                f"no corpus connector for source kind {kind!r}; kinds: {sorted(self._entries)}"
            ) from None

    def list_entries(self, source: BaseModel, root: UPath, request: ListRequest) -> Listing:
        """Entries and problems of ``source`` through the connector its ``kind`` names."""
        kind = getattr(source, "kind", None)
        entry = self.get(kind if isinstance(kind, str) else type(source).__name__)
        if not isinstance(source, entry.settings):
            raise UnknownConnectorError(
                f"source kind {entry.kind!r} expects {entry.settings.__name__} settings, got "
                f"{type(source).__name__}"
            )
        if entry.lister is None:
            raise UnknownConnectorError(
                f"source kind {entry.kind!r} is generated, not listed: {entry.module} writes it "
                "out and reads it back as another kind of source"
            )
        return entry.lister(source, root, request)


REGISTRY = ConnectorRegistry()
"""The project's connectors; filled by importing ``kws_assets.core.corpus.connectors``."""
register_connector = REGISTRY.register
