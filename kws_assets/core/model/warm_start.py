"""Warm starts from a model's previous materialization: a re-run after one keyword changed starts
from the weights trained last time instead of a fresh initialisation.

A re-run with one keyword replaced trains the same network on a table that is eleven twelfths
the same, so the previous weights are close to the answer and a short budget
(``train.warm_epochs``) reaches the accuracy a full training from scratch reaches.  The output
layer is the only part whose rows mean labels: :func:`label_mapped_state` gives every label the
previous run also had its previous row, a new label the fresh row of a seeded initialisation,
and drops the rows of labels that are gone.  Everything else must fit exactly: a previous
checkpoint of another family, network shape or front end (its :func:`warm_signature` differs),
of other tensor shapes, or one that cannot be read at all gives :meth:`WarmStart.from_scratch`
with the reason, never an error — a warm start is an optimisation, never a requirement.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from kws_assets.core.model.checkpoint import ModelCheckpoint
from kws_assets.core.model.training import Replay


@dataclass(frozen=True)
class WarmStart:
    """The initial state of a training (None: from scratch) and why, for the model's metadata."""

    state: dict[str, torch.Tensor] | None
    reason: str
    kept: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    source: dict[str, Any] = field(default_factory=dict)
    """Which previous materialization the state came from (run id, time, path), set by the
    caller that found it."""

    @property
    def warm(self) -> bool:
        return self.state is not None

    @classmethod
    def from_scratch(cls, reason: str) -> WarmStart:
        return cls(None, reason)

    def replay(self, labels: Sequence[str], share: float) -> Replay | None:
        """How this start's epochs draw their rows (``train.warm_replay``): None from scratch."""
        return Replay.of(self.added, labels, share) if self.warm else None

    def with_source(self, source: Mapping[str, Any]) -> WarmStart:
        """This warm start, recording where its previous checkpoint came from."""
        return WarmStart(self.state, self.reason, self.kept, self.added, self.removed, dict(source))

    def as_dict(self) -> dict[str, Any]:
        """What the model's metadata and card show (no tensors)."""
        out: dict[str, Any] = {"warm": self.warm, "reason": self.reason}
        if self.warm:
            out |= {
                "labels_kept": len(self.kept),
                "labels_added": list(self.added),
                "labels_removed": list(self.removed),
            }
        if self.source:
            out["from"] = dict(self.source)
        return out


def describe(info: Mapping[str, Any]) -> str:
    """One sentence for a model card from a checkpoint's ``warm_start`` record."""
    if not info:
        return ""
    if not info.get("warm"):
        start = info.get("started_from")
        return (
            f"Started from {start}'s weights" if start else "Trained from scratch"
        ) + f", not from a previous materialization ({info.get('reason', 'no reason')})."
    source = info.get("from") or {}
    where = ", ".join(
        f"{name} {source[key]}"
        for key, name in (("run_id", "run"), ("materialized_at", "materialized"))
        if key in source
    )
    change = ", ".join(
        f"{verb} {', '.join(info.get(key) or [])}"
        for key, verb in (("labels_added", "added"), ("labels_removed", "removed"))
        if info.get(key)
    )
    return (
        "Warm-started from its previous materialization"
        + (f" ({where})" if where else "")
        + f": {info.get('labels_kept', 0)} labels kept"
        + (f", {change}" if change else "")
        + "."
    )


def warm_signature(
    family: str, network: Mapping[str, Any], front_end: Mapping[str, Any]
) -> dict[str, Any]:
    """What two checkpoints must share for one to warm-start the other's training: the family,
    the network's shape settings and the front end's spec, each without what depends on the data
    (label count, normalisation stats) — a family passes only those parts."""
    return {"family": family, "network": dict(network), "front_end": dict(front_end)}


def output_keys(state: Mapping[str, Any]) -> tuple[str, ...]:
    """The tensors of the output layer: those of the last module in the state dict (its weight
    and bias; every family's network ends in the linear layer to the logits)."""
    if not state:
        return ()
    last = next(reversed(list(state)))
    module = last.rpartition(".")[0]
    return tuple(k for k in state if k.rpartition(".")[0] == module)


def label_mapped_state(
    previous: Mapping[str, Any],
    previous_labels: Sequence[str],
    fresh: Mapping[str, torch.Tensor],
    labels: Sequence[str],
) -> WarmStart:
    """``previous``'s weights in the shape of ``fresh`` (a seeded initialisation of the network
    for ``labels``): every tensor copied, except the output layer's (:func:`output_keys`),
    whose rows are mapped by label — a kept label keeps its previous row, a new label gets
    ``fresh``'s row, a removed label's row is dropped.  Any tensor that does not fit gives
    :meth:`WarmStart.from_scratch` saying which."""
    if set(previous) != set(fresh):
        missing = sorted(set(fresh) - set(previous))
        extra = sorted(set(previous) - set(fresh))
        return WarmStart.from_scratch(
            f"the previous network has other tensors (missing {missing[:4]}, extra {extra[:4]})"
        )
    outputs = set(output_keys(fresh))
    where = {label: i for i, label in enumerate(previous_labels)}
    if len(where) != len(previous_labels):
        return WarmStart.from_scratch("the previous checkpoint's labels repeat")
    state: dict[str, torch.Tensor] = {}
    for key, target in fresh.items():
        old = previous[key]
        if not isinstance(old, torch.Tensor):
            return WarmStart.from_scratch(f"the previous {key} is not a tensor")
        if key in outputs:
            if old.dim() == 0 or old.shape[0] != len(previous_labels):
                return WarmStart.from_scratch(
                    f"the previous output layer {key} has {tuple(old.shape)} rows for "
                    f"{len(previous_labels)} labels"
                )
            if old.shape[1:] != target.shape[1:]:
                return WarmStart.from_scratch(
                    f"the output layer {key} changed shape: {tuple(old.shape)} -> "
                    f"{tuple(target.shape)}"
                )
            rows = target.detach().clone()
            for i, label in enumerate(labels):
                if label in where:
                    rows[i] = old[where[label]].to(rows.dtype)
            state[key] = rows
        elif old.shape != target.shape:
            return WarmStart.from_scratch(
                f"{key} changed shape: {tuple(old.shape)} -> {tuple(target.shape)}"
            )
        else:
            state[key] = old.detach().clone().to(target.dtype)
    kept = tuple(label for label in labels if label in where)
    if not kept:
        return WarmStart.from_scratch("the previous model shares no label with this one")
    added = tuple(label for label in labels if label not in where)
    removed = tuple(label for label in previous_labels if label not in set(labels))
    change = (
        "the same labels"
        if not added and not removed
        else f"labels added {list(added)}, removed {list(removed)}"
    )
    return WarmStart(
        state,
        f"from the previous checkpoint: {len(kept)} labels kept, {change}",
        kept,
        added,
        removed,
    )


def warm_start_from(
    previous: ModelCheckpoint | None,
    signature: Mapping[str, Any],
    previous_signature: Callable[[ModelCheckpoint], Mapping[str, Any]],
    labels: Sequence[str],
    fresh_state: Callable[[], Mapping[str, torch.Tensor]],
) -> WarmStart:
    """The initial state a training on ``labels`` takes from ``previous`` (None: there is none):
    from scratch unless ``previous_signature(previous)`` equals ``signature`` (the same family,
    network shape and front end) and its tensors map onto ``fresh_state()``'s
    (:func:`label_mapped_state`).  A checkpoint that cannot be read as one (a corrupt or foreign
    file that unpickled to something else) is a reason to train from scratch, not an error."""
    if previous is None:
        return WarmStart.from_scratch("no previous checkpoint")
    if previous.family != signature.get("family"):
        return WarmStart.from_scratch(
            f"the previous checkpoint is a {previous.family!r} model, not "
            f"{signature.get('family')!r}"
        )
    try:
        theirs = dict(previous_signature(previous))
        changed = sorted(k for k in {*theirs, *signature} if theirs.get(k) != signature.get(k))
        if changed:
            detail = "; ".join(
                f"{k}: {_difference(theirs.get(k), signature.get(k))}" for k in changed
            )
            return WarmStart.from_scratch(f"the previous checkpoint's {detail} changed")
        return label_mapped_state(previous.state_dict, previous.labels, fresh_state(), labels)
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        return WarmStart.from_scratch(f"the previous checkpoint is unusable: {first}")


def _difference(old: Any, new: Any) -> str:
    """The settings that differ between two signature parts (dicts: by key)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
        return ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in keys[:4])
    return f"{old!r} -> {new!r}"


def seeded_state(build: Callable[[], torch.nn.Module], seed: int) -> dict[str, torch.Tensor]:
    """The state dict of ``build()`` after ``torch.manual_seed(seed)``, without moving the
    global generator: the fresh rows a new label gets, the same on every re-run."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return dict(build().state_dict())
