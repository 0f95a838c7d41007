"""Typed resources injected into assets: the pipeline config and the clip store."""


from functools import cached_property

import dagster as dg

from kws_assets.config import KwsConfig, load_config
from kws_assets.core.clip_store import ClipStore


class KwsSettings(dg.ConfigurableResource):
    """The pipeline configuration (``kws.yaml``); ``config_path`` empty means the embedded default."""

    config_path: str = ""

    @cached_property
    def config(self) -> KwsConfig:
        return load_config(self.config_path or None)


class ClipStoreResource(dg.ConfigurableResource):
    """Where clip WAVs are written; tables hold the URIs it returns."""

    root: str

    @cached_property
    def store(self) -> ClipStore:
        return ClipStore.at(self.root)
