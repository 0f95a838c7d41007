"""Progress inside a run, for a person watching a terminal: which step is running, and what it
last said (a training epoch with its validation accuracy, clips done of total with a rate).

A Dagster run logger, ``progress``, off unless the run config turns it on (``make demo`` does:
``{"loggers": {"progress": {"config": {"enabled": true}}}}``).  Dagster hands it every log record
of the run with its metadata (``dagster_meta``: the step key, the Dagster event); it prints a line
when a step starts, the step's own INFO messages at most one every ``interval_s`` per step (the
last one held back is printed when the step ends), and the step's wall time when it finishes.
Everything still lands in the instance's event log for the UI; this is only a terminal view.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

import dagster as dg

STEP_INDENT = "    "
DEFAULT_INTERVAL_S = 2.0
"""At most one message line per step this often: a training epoch every second or a batch of
clips every 100 ms must not flood the terminal."""


class RunProgress(logging.Handler):
    """Dagster log records to terminal lines: ``    kws_model …``, ``    kws_model: epoch 3/30 …``,
    ``    kws_model done in 41.2 s``.  ``stream`` is looked up at each line (default: the
    ``sys.stdout`` of that moment, so a redirected stdout gets the lines)."""

    def __init__(
        self,
        stream: Callable[[], TextIO] = lambda: sys.stdout,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(level=logging.DEBUG)  # step events are DEBUG records
        self._stream, self._interval_s, self._clock = stream, interval_s, clock
        self._started: dict[str, float] = {}
        self._said: dict[str, float] = {}
        self._held: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        step = meta.get("step_key")
        if not step:
            return
        event = meta.get("dagster_event")
        kind = event.event_type_value if event is not None else None
        now = self._clock()
        if kind == "STEP_START":
            self._started[step] = now
            self._line(f"{step} …")
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            if step in self._held:
                self._line(f"{step}: {self._held.pop(step)}")
            seconds = now - self._started.pop(step, now)
            self._said.pop(step, None)
            self._line(
                f"{step} {'done' if kind == 'STEP_SUCCESS' else 'FAILED'} in {seconds:.1f} s"
            )
        elif kind is None and record.levelno >= logging.INFO:
            message = str(meta.get("orig_message") or record.getMessage()).strip()
            if not message:
                return
            if now - self._said.get(step, -float("inf")) >= self._interval_s:
                self._said[step] = now
                self._held.pop(step, None)
                self._line(f"{step}: {message.splitlines()[0]}")
            else:
                self._held[step] = message.splitlines()[0]

    def _line(self, text: str) -> None:
        stream = self._stream()
        print(f"{STEP_INDENT}{text}", file=stream, flush=True)


@dg.logger(
    config_schema={
        "enabled": dg.Field(bool, default_value=False, description="print step progress"),
        "interval_s": dg.Field(float, default_value=DEFAULT_INTERVAL_S),
    },
    description="Step progress on stdout for a person at a terminal (make demo turns it on).",
)
def progress_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("kws_progress", level=logging.DEBUG)
    if init_context.logger_config["enabled"]:
        logger.addHandler(RunProgress(interval_s=init_context.logger_config["interval_s"]))
    else:  # a handler, or Python's last-resort handler prints warnings to stderr
        logger.addHandler(logging.NullHandler())
    return logger


RUN_LOGGERS = {"console": dg.colored_console_logger, "progress": progress_logger}
"""The loggers every job of the code location has: Dagster's console logger (as before) and the
progress logger, off unless a run's config turns it on."""
