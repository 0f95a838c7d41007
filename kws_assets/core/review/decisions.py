"""The ``review_decisions`` table: one immutable object per decision, the table is their union.

Reviewers work at the same time, on one machine or several, against a local folder or an S3
prefix.  Appending to one shared file would need a lock (locally) or a conditional write loop
(S3), and a lost update silently drops a person's work.  Instead every decision is its own
object under :data:`DECISIONS_PREFIX`, named by the clip, the time and a random suffix: two
writers never write the same key, each write is atomic (the object store's guarantee), and
reading the table lists the prefix and concatenates what it finds.  A later decision about the
same clip supersedes an earlier one (:func:`latest_decisions`); nothing is ever overwritten, so
the table is also the audit trail.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import polars as pl

from kws_assets.core.storage.object_store import ObjectNotFound, ObjectStore

DECISIONS_PREFIX = "review_decisions"
KEEP = "keep"
RELABEL = "relabel"
REJECT = "reject"
ACTIONS = (KEEP, RELABEL, REJECT)
DECISION_COLUMNS: dict[str, type[pl.DataType]] = {
    "clip_id": pl.String,
    "data_version": pl.String,
    "action": pl.String,
    "old_label": pl.String,
    "new_label": pl.String,
    "reason": pl.String,
    "reviewer": pl.String,
    "time": pl.String,
    "key": pl.String,
}


class DecisionError(ValueError):
    """A decision that cannot be recorded as given (unknown action, relabel without a label)."""


@dataclass(frozen=True)
class Decision:
    """What one reviewer decided about one clip.  ``new_label`` is the label the clip carries
    after the decision: the old one for ``keep``, the chosen one for ``relabel``, None for
    ``reject``.  ``reason`` is why the clip was in the queue (the data card counts by it);
    ``data_version`` is the version of the queue the reviewer saw; ``time`` is UTC ISO 8601."""

    clip_id: str
    data_version: str
    action: str
    old_label: str
    new_label: str | None
    reason: str
    reviewer: str
    time: str

    @classmethod
    def make(
        cls,
        *,
        clip_id: str,
        data_version: str,
        action: str,
        old_label: str,
        reason: str,
        reviewer: str,
        new_label: str | None = None,
        now: datetime | None = None,
    ) -> Decision:
        """A checked decision stamped with the current UTC time (or ``now``)."""
        if action not in ACTIONS:
            raise DecisionError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
        if not clip_id or not reviewer.strip():
            raise DecisionError("a decision needs a clip id and a reviewer name")
        if action == RELABEL and not new_label:
            raise DecisionError("relabel needs the new label")
        label = {KEEP: old_label, RELABEL: new_label, REJECT: None}[action]
        stamp = (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="microseconds")
        return cls(
            clip_id=clip_id,
            data_version=data_version,
            action=action,
            old_label=old_label,
            new_label=label,
            reason=reason,
            reviewer=reviewer.strip(),
            time=stamp,
        )


def decision_key(decision: Decision) -> str:
    """A key no other write uses: the clip, the time (sortable) and 128 random bits."""
    stamp = decision.time.replace(":", "").replace("+", "Z").replace(".", "_")
    return f"{DECISIONS_PREFIX}/{decision.clip_id}/{stamp}-{uuid.uuid4().hex}.json"


def record_decision(store: ObjectStore, decision: Decision) -> str:
    """Append ``decision`` to the table (one new object; never replaces another); its key."""
    key = decision_key(decision)
    store.put_bytes(key, json.dumps(asdict(decision), sort_keys=True).encode("utf-8"))
    return key


def read_decisions(store: ObjectStore) -> pl.DataFrame:
    """Every recorded decision (:data:`DECISION_COLUMNS`), oldest first.  An object deleted
    between listing and reading is skipped (someone pruned the table meanwhile)."""
    rows = []
    for key in store.list_keys(DECISIONS_PREFIX):
        if not key.endswith(".json"):
            continue
        try:
            record = json.loads(store.get_bytes(key))
        except ObjectNotFound:
            continue
        rows.append({**{c: record.get(c) for c in DECISION_COLUMNS}, "key": key})
    if not rows:
        return pl.DataFrame(schema=DECISION_COLUMNS)
    return pl.DataFrame(rows, schema=DECISION_COLUMNS).sort(["time", "key"])


def latest_decisions(decisions: pl.DataFrame) -> pl.DataFrame:
    """One row per clip: its most recent decision (ties broken by key, so every reader picks
    the same one)."""
    return (
        decisions.sort(["time", "key"])
        .group_by("clip_id", maintain_order=True)
        .last()
        .select(list(DECISION_COLUMNS))
        .sort("clip_id")
    )
