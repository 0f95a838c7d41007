"""Deployment settings: where data lives (local folder or S3) and how sensors notice new work."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from kws_assets.settings.base import StrictSettings


class StorageSettings(StrictSettings):
    """Where data lives.  ``deployment`` picks the backend of clips, tables and checkpoints:
    ``local`` (folders under ``root``) or ``s3`` (objects under ``s3://s3_bucket/s3_prefix``).
    Credentials are never configured here: boto3 reads them from the environment."""

    root: str = Field(".kws_data", description="Clip store, tables and artifacts live under here.")
    deployment: Literal["local", "s3"] = Field(
        "local",
        description="local: clips/tables/models under root; s3: under s3_bucket/s3_prefix "
        "(root still holds the generated demo corpus and the artifact).",
    )
    s3_bucket: str = Field("", description="Bucket for deployment 's3' (must exist).")
    s3_prefix: str = Field(
        "kws",
        description="Key prefix under the bucket: <prefix>/clips, "
        "<prefix>/tables, <prefix>/models.",
    )
    s3_endpoint_url: str = Field(
        "", description="S3-compatible endpoint (MinIO, moto...); empty = AWS."
    )
    s3_region: str = Field(
        "", description="AWS region; empty = from the environment (AWS_REGION...)."
    )
    s3_retries: int = Field(
        4,
        ge=0,
        description="Retries of a failed S3 request after its first "
        "attempt (botocore standard mode: 5xx, throttling "
        "and dropped connections, exponential backoff).",
    )

    @model_validator(mode="after")
    def _check_s3(self) -> StorageSettings:
        if self.deployment == "s3":
            if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", self.s3_bucket):
                raise ValueError(
                    f"storage.deployment 's3' needs a valid storage.s3_bucket, "
                    f"got {self.s3_bucket!r}"
                )
            if any(p in {".", ".."} or p.startswith(".") for p in self.s3_prefix.split("/") if p):
                raise ValueError(f"storage.s3_prefix {self.s3_prefix!r} has a '.'-component")
        return self

    def local_path(self, *parts: str) -> Path:
        """``parts`` under the local ``root`` (absolute, ``~`` expanded): where the work folders
        and generated corpora live, whatever the deployment."""
        return Path(self.root).expanduser().resolve().joinpath(*parts)


class AutomationSettings(StrictSettings):
    """How a running Dagster deployment notices new work: the landing zone and sensor cadence."""

    landing_root: str = Field(
        "landing",
        description="Where corpus batches land, one folder per batch holding a manifest "
        "(written last). Relative = under storage.root; may be s3://.",
    )
    landing_manifests: list[str] = Field(
        default_factory=lambda: ["manifest.csv", "manifest.tsv", "manifest.jsonl"],
        min_length=1,
        description="Manifest file names a batch folder may hold; the first one found is used.",
    )
    landing_license: str = Field("unknown", description="License of landed rows that name none.")
    sensor_interval_s: int = Field(30, ge=1, description="Minimum seconds between sensor ticks.")
    landing_settle_s: float = Field(
        10.0,
        ge=0,
        description="Seconds a batch's manifest must be unchanged before the landing "
        "sensor takes it (a manifest written or replaced more recently is "
        "deferred to a later tick); 0 = the manifest's arrival is the "
        "ready signal.",
    )


class ComputeSettings(StrictSettings):
    """How much of the machine the per-clip stages use (augmentation, alignment, synthesis run
    over batches of clips on worker processes; results do not depend on the count)."""

    workers: int = Field(
        0,
        ge=0,
        description="Worker processes per stage: 0 = one per CPU core this process may run on "
        "(its affinity mask); 1 = in-process, no pool. The KWS_WORKERS environment variable "
        "overrides it (a Celery/Kubernetes step that owns one core sets KWS_WORKERS=1).",
    )
    batch_clips: int = Field(
        16,
        ge=1,
        description="Source clips an augmentation worker takes per batch: larger batches cost "
        "less per clip in hand-off, smaller ones balance the workers better (alignment takes "
        "utterances four at a time).",
    )
