"""The model families, registered by name: what the assets, ``kws classify/detect`` and the demo
loop over.

A :class:`Registry` is an ordered name -> :class:`~kws_assets.core.families.base.Family` map;
:data:`REGISTRY` holds the families this package ships, in a stable order (the DS-CNN on MFCC,
then the head over the speech embedding, then the streaming network ESPHome runs).  Code that
must work with any family takes a registry (default: :data:`REGISTRY`), so a test can pass its
own or register a toy family for a while (:meth:`Registry.registered`).  The names must equal
the ``ModelFamily`` Literal of ``settings/model.py`` (settings import nothing from the core; a
test holds the two equal).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from kws_assets.core.families.base import Family, FamilySettings
from kws_assets.core.families.mfcc_dscnn import MFCC_DSCNN
from kws_assets.core.families.micro_wake_word import MICRO_WAKE_WORD
from kws_assets.core.families.speech_embedding import SPEECH_EMBEDDING
from kws_assets.core.ship.cpu_latency import DEFAULT_PRECISION
from kws_assets.core.ship.export import ClipClassifier, recorded_family

__all__ = [
    "REGISTRY",
    "Family",
    "FamilySettings",
    "Registry",
    "artifact_assets",
    "families",
    "family_of_folder",
    "get_family",
    "load_classifier",
]

PathLike = str | os.PathLike[str]


class Registry:
    """Model families by name, in registration order."""

    def __init__(self, families: Iterable[Family] = ()) -> None:
        self._families: dict[str, Family] = {}
        for family in families:
            self.register(family)

    def register(self, family: Family) -> Family:
        """Add a family; its name and its asset keys must be new."""
        if family.name in self._families:
            raise ValueError(f"a model family named {family.name!r} is already registered")
        taken = {a.key for f in self for a in (f.table, f.model, f.artifact)}
        clash = taken & {family.table.key, family.model.key, family.artifact.key}
        if clash:
            raise ValueError(f"family {family.name!r}: asset keys {sorted(clash)} are taken")
        self._families[family.name] = family
        return family

    def unregister(self, name: str) -> None:
        """Remove a family (a test's toy family, once the test is done)."""
        self.get(name)
        del self._families[name]

    @contextmanager
    def registered(self, family: Family) -> Iterator[Family]:
        """``family`` registered for the length of a ``with`` block."""
        self.register(family)
        try:
            yield family
        finally:
            self.unregister(family.name)

    def get(self, name: str) -> Family:
        """The family called ``name``; a clear error naming the known ones otherwise."""
        try:
            return self._families[name]
        except KeyError:
            raise ValueError(
                f"unknown model family {name!r} (this version knows {', '.join(self.names())})"
            ) from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._families)

    def __iter__(self) -> Iterator[Family]:
        return iter(tuple(self._families.values()))

    def __len__(self) -> int:
        return len(self._families)

    def family_of_folder(self, folder: PathLike) -> Family:
        """The family an artifact folder belongs to: the one its ``front_end.json`` names, else
        the first family that recognises the folder's layout."""
        folder = Path(folder)
        recorded = recorded_family(folder)
        if recorded is not None:
            return self.get(recorded)
        for family in self:
            if family.owns_folder(folder):
                return family
        raise ValueError(f"{folder}: no registered model family recognises this folder")

    def load_classifier(
        self, folder: PathLike, threads: int | None = None, precision: str = DEFAULT_PRECISION
    ) -> ClipClassifier:
        """The classifier of an artifact folder of any family, running its ``precision`` graph
        (``int8``, the default and what the gates measured; ``float``; or ``auto``: whichever
        ``cpu_latency.json`` found faster on the machine that built it), or of a family's other
        shipped format (the device folder's ``.tflite``, an ESPHome folder: their own graphs)."""
        folder = Path(folder)
        for family in self:
            if family.reads_shipped(folder):
                return family.load_shipped(folder, threads)
        return self.family_of_folder(folder).load_classifier(folder, threads, precision)

    def selected(self, names: Iterable[str]) -> Registry:
        """The families called ``names``, in this registry's order (a config's ``families``).
        Each must be known, and a family that learns from another (``distil_from``) needs its
        teacher among them: a clear ValueError otherwise."""
        wanted = set(names)
        for name in sorted(wanted):
            self.get(name)
        chosen = [family for family in self if family.name in wanted]
        for family in chosen:
            if family.distil_from is not None and family.distil_from not in wanted:
                raise ValueError(
                    f"the {family.name} family learns from the {family.distil_from} family: "
                    f"list {family.distil_from} in families too"
                )
        return Registry(chosen)

    def artifact_assets(self) -> dict[str, str]:
        """``{family name: its artifact asset key}``, in registry order (evaluation's ins)."""
        return {family.name: family.artifact.key for family in self}


REGISTRY = Registry([MFCC_DSCNN, SPEECH_EMBEDDING, MICRO_WAKE_WORD])
"""The families this package ships."""


def families() -> tuple[Family, ...]:
    """The shipped families, in registry order."""
    return tuple(REGISTRY)


def get_family(name: str) -> Family:
    """The shipped family called ``name`` (a ValueError naming the known ones otherwise)."""
    return REGISTRY.get(name)


def family_of_folder(folder: PathLike) -> Family:
    """The shipped family an artifact folder belongs to."""
    return REGISTRY.family_of_folder(folder)


def load_classifier(
    folder: PathLike, threads: int | None = None, precision: str = DEFAULT_PRECISION
) -> ClipClassifier:
    """The classifier of an artifact folder of any shipped family (see
    :meth:`Registry.load_classifier`)."""
    return REGISTRY.load_classifier(folder, threads, precision)


def artifact_assets() -> dict[str, str]:
    """``{family name: artifact asset key}`` of the shipped families."""
    return REGISTRY.artifact_assets()
