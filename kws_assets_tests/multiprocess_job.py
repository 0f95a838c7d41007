"""A reconstructable job for the scale-out test: ``keyword_clips`` with the multiprocess executor.

Dagster re-creates a job in every step process from a module-level function, as the Kubernetes
and Celery executors do in their pods and workers; the config file comes from ``$KWS_CONFIG``.
"""

import dagster as dg

from kws_assets.definitions import build_definitions
from kws_assets.defs.jobs import KEYWORD_JOB


def keyword_clips_multiprocess() -> dg.JobDefinition:
    defs = build_definitions(executor=dg.multiprocess_executor)
    return defs.resolve_job_def(KEYWORD_JOB)
