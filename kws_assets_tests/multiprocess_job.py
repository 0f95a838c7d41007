"""Reconstructable jobs for the scale-out tests (multiprocess and Celery executors).

Dagster re-creates a job in every step process from a module-level function, as the Kubernetes
and Celery executors do in their pods and workers; the config file comes from ``$KWS_CONFIG``.
"""

import dagster as dg

from kws_assets.definitions import build_definitions
from kws_assets.defs.jobs import KEYWORD_JOB


def keyword_clips_multiprocess() -> dg.JobDefinition:
    defs = build_definitions(executor=dg.multiprocess_executor)
    return defs.resolve_job_def(KEYWORD_JOB)


def job_of_code_location(job_name: str) -> dg.JobDefinition:
    """``job_name`` as the code location defines it: the executor ``$KWS_EXECUTOR`` names."""
    return build_definitions().resolve_job_def(job_name)


def reconstructable_job(job_name: str):
    """A pointer to ``job_name`` that a step process or Celery worker can load again."""
    return dg.build_reconstructable_job(
        __name__, job_of_code_location.__name__, reconstructable_args=(job_name,)
    )
