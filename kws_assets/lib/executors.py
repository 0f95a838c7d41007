"""The executor a code location runs its steps with, chosen by the deployment's environment.

``$KWS_EXECUTOR`` picks it, so that the webserver, the daemon and every Celery worker load the
same definitions from one ``kws_assets.definitions`` (nothing to edit per deployment):

* ``in_process`` (default, also when unset or empty): every step of a run in the run's process.
* ``multiprocess``: a process per step on the machine that launched the run.
* ``celery``: each step is a Celery task, run by whichever worker takes it from the broker
  (``dagster-celery``; README "Scaling out").  Broker and result backend come from
  ``$DAGSTER_CELERY_BROKER_URL`` / ``$DAGSTER_CELERY_BACKEND_URL`` when the run starts, never from
  run config, so a password in a broker URL is not stored with the run.

Celery and multiprocess steps share nothing but the instance and the storage: they need
``storage.deployment: s3`` (or one shared ``storage.root``) and an instance every machine reaches
(PostgreSQL), which Dagster checks when the run starts.
"""

from __future__ import annotations

import os

import dagster as dg

EXECUTOR_ENV = "KWS_EXECUTOR"
CELERY_BROKER_ENV = "DAGSTER_CELERY_BROKER_URL"
CELERY_BACKEND_ENV = "DAGSTER_CELERY_BACKEND_URL"
IN_PROCESS, MULTIPROCESS, CELERY = "in_process", "multiprocess", "celery"
EXECUTOR_NAMES = (IN_PROCESS, MULTIPROCESS, CELERY)


def celery_executor() -> dg.ExecutorDefinition:
    """dagster-celery's executor, broker and result backend read from the environment.

    Workers take the same URLs from their ``-y`` config file (``dagster-celery worker start``).
    """
    try:
        from dagster_celery import celery_executor as dagster_celery_executor
    except ImportError as exc:  # an optional extra: say how to get it
        raise ImportError(
            f"{EXECUTOR_ENV}=celery needs dagster-celery and the Redis client: "
            "pip install 'kws_assets[celery]' (dagster-celery, celery[redis])"
        ) from exc
    return dagster_celery_executor.configured(
        {"broker": {"env": CELERY_BROKER_ENV}, "backend": {"env": CELERY_BACKEND_ENV}},
        name="celery",
    )


def executor_named(name: str) -> dg.ExecutorDefinition:
    """The executor ``name`` stands for (one of :data:`EXECUTOR_NAMES`)."""
    if name == IN_PROCESS:
        # One process per run: a step subprocess would re-import torch & co. for seconds of work;
        # parallelism comes from runs (one per partition), not from steps.
        return dg.in_process_executor
    if name == MULTIPROCESS:
        return dg.multiprocess_executor
    if name == CELERY:
        return celery_executor()
    raise ValueError(
        f"{EXECUTOR_ENV}={name!r} is not an executor: use one of "
        f"{', '.join(EXECUTOR_NAMES)} (or leave it unset for {IN_PROCESS})"
    )


def executor_from_env() -> dg.ExecutorDefinition:
    """The executor ``$KWS_EXECUTOR`` names (unset or empty: in-process)."""
    return executor_named(os.environ.get(EXECUTOR_ENV, "").strip() or IN_PROCESS)
