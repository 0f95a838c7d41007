"""$KWS_EXECUTOR picks the executor of the code location (lib/executors.py)."""

from __future__ import annotations

import dagster as dg
import pytest

from kws_assets.definitions import build_definitions
from kws_assets.defs.jobs import PIPELINE_JOB
from kws_assets.lib.executors import (
    CELERY_BACKEND_ENV,
    CELERY_BROKER_ENV,
    EXECUTOR_ENV,
    EXECUTOR_NAMES,
    executor_from_env,
    executor_named,
)


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, "in_process"),
        ("", "in_process"),
        (" in_process ", "in_process"),
        ("multiprocess", "multiprocess"),
        ("celery", "celery"),
    ],
)
def test_executor_from_env(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    else:
        monkeypatch.setenv(EXECUTOR_ENV, value)
    assert executor_from_env().name == expected


def test_unknown_executor_names_the_choices(monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, "k8s")
    with pytest.raises(ValueError, match=r"KWS_EXECUTOR='k8s'.*in_process, multiprocess, celery"):
        executor_from_env()


def test_code_location_jobs_use_the_executor_of_the_environment(tiny_config_file, monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV, "celery")
    job = build_definitions(tiny_config_file).resolve_job_def(PIPELINE_JOB)
    assert job.executor_def.name == "celery"
    monkeypatch.setenv(EXECUTOR_ENV, "in_process")
    assert (
        build_definitions(tiny_config_file).resolve_job_def(PIPELINE_JOB).executor_def.name
        == "in_process"
    )
    # An explicit executor wins over the environment.
    explicit = build_definitions(tiny_config_file, executor=dg.multiprocess_executor)
    assert explicit.resolve_job_def(PIPELINE_JOB).executor_def.name == "multiprocess"


def test_celery_broker_and_backend_come_from_the_environment(monkeypatch):
    """The executor's config holds no URL, only where to read it: the broker's (possibly secret)
    address is resolved from the environment when a run starts, never stored in run config."""
    monkeypatch.setenv(CELERY_BROKER_ENV, "redis://127.0.0.1:6390/0")
    monkeypatch.setenv(CELERY_BACKEND_ENV, "redis://127.0.0.1:6390/1")
    executor_def = executor_named("celery")
    assert not executor_def.config_schema.as_field().is_required  # nothing left to configure
    resolved = executor_def.apply_config_mapping({})
    assert resolved.success, resolved.errors
    assert resolved.value["config"]["broker"] == "redis://127.0.0.1:6390/0"
    assert resolved.value["config"]["backend"] == "redis://127.0.0.1:6390/1"
    monkeypatch.delenv(CELERY_BROKER_ENV)
    assert not executor_def.apply_config_mapping({}).success  # a missing variable is an error


def test_every_name_is_an_executor():
    assert {executor_named(name).name for name in EXECUTOR_NAMES} == set(EXECUTOR_NAMES)
