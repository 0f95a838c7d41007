"""The part of the graph the config's ``families`` decides: for each family it lists, the model,
the artifact and the release; the evaluations over exactly those families; and, when the DS-CNN on
MFCC trains, the student distilled into it, the small-device artifact and the int8 gates.

Every family's feature table (and negatives table) stays in the graph whatever ``families`` says:
the tables are cheap beside a training, and the evaluation reads the MFCC table's speakers.
:func:`kws_assets.definitions.build_definitions` adds :func:`family_definitions` of the config in
force to the ``defs/`` folder's assets.
"""

from __future__ import annotations

import dagster as dg

from kws_assets.core.families import REGISTRY, Registry
from kws_assets.core.families.mfcc_dscnn import MFCC_DSCNN
from kws_assets.defs.assets.device import device_model_asset
from kws_assets.defs.assets.evaluate import evaluation_asset, transfer_evaluation_asset
from kws_assets.defs.assets.ship import family_artifacts
from kws_assets.defs.assets.train import family_models, student_model_asset
from kws_assets.defs.checks import dscnn_checks
from kws_assets.settings import KwsConfig


def family_definitions(cfg: KwsConfig, registry: Registry = REGISTRY) -> dg.Definitions:
    """The assets and checks of the families ``cfg`` trains (see the module docstring)."""
    chosen = registry.selected(cfg.families)  # in registry order, teachers checked
    assets = [
        *family_models(chosen),
        *family_artifacts(chosen),
        evaluation_asset(chosen),
        transfer_evaluation_asset(chosen),
    ]
    checks: list[dg.AssetChecksDefinition] = []
    if MFCC_DSCNN.name in chosen.names():
        assets += [student_model_asset(), device_model_asset()]
        checks += dscnn_checks()
    return dg.Definitions(assets=assets, asset_checks=checks)
