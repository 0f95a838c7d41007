"""``MODEL_CARD.md``: what the shipped model is for, what it was trained on, how well it does on
each evaluation set and for each group of speakers, and the licenses of what went into it.

Per-group numbers matter because a synthetic-speech model can be good on average and poor for one
engine or voice family; :func:`speaker_group_metrics` computes accuracy, false-reject rate (FRR:
keyword clips not recognised as their keyword) and clip false-accept rate (non-keyword clips
taken for a keyword) for every value of every grouping (engine, voice family, perturbed or
not...).  Every string that came from a corpus, a config or a voice list goes through
:func:`~kws_assets.core.text_safety.escape_markdown` / ``escape_cell`` before it reaches Markdown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from kws_assets.core.review.field import FalseWakeRate
from kws_assets.core.ship.manifest import OperatingPoint
from kws_assets.core.text_safety import escape_cell, escape_markdown

NON_KEYWORD_LABELS = ("_silence_", "_unknown_")
RATE_DECIMALS = 4


@dataclass(frozen=True)
class GroupMetrics:
    """One row of the per-group table."""

    grouping: str
    group: str
    clips: int
    accuracy: float
    keyword_clips: int
    frr: float | None
    """Keyword clips predicted as anything but their keyword; None without keyword clips."""
    non_keyword_clips: int
    false_accept_rate: float | None
    """Non-keyword clips predicted as a keyword; None without such clips."""


def speaker_group_metrics(
    labels: Sequence[str],
    predictions: Sequence[str],
    groups: Mapping[str, Sequence[object]],
    non_keyword_labels: Sequence[str] = NON_KEYWORD_LABELS,
) -> list[GroupMetrics]:
    """Accuracy, FRR and clip false-accept rate per value of each grouping.

    ``labels`` / ``predictions``: true and predicted class names, one per clip; ``groups``: for
    each grouping name (``engine``, ``voice_family``, ``perturbed``...) one value per clip.
    Rows come grouping by grouping, values sorted.
    """
    truth = np.asarray(list(labels), dtype=object)
    pred = np.asarray(list(predictions), dtype=object)
    if len(truth) != len(pred):
        raise ValueError(f"{len(truth)} labels but {len(pred)} predictions")
    if len(truth) == 0:
        raise ValueError("no clips to score")
    non_keyword = set(non_keyword_labels)
    is_keyword = np.array([t not in non_keyword for t in truth])
    pred_keyword = np.array([p not in non_keyword for p in pred])
    correct = truth == pred
    rows: list[GroupMetrics] = []
    for grouping, raw_values in groups.items():
        values = [str(v) for v in raw_values]
        if len(values) != len(truth):
            raise ValueError(
                f"grouping {grouping!r} has {len(values)} values for {len(truth)} clips"
            )
        column = np.asarray(values, dtype=object)
        for value in sorted(set(values)):
            member = column == value
            kw, nk = member & is_keyword, member & ~is_keyword
            rows.append(
                GroupMetrics(
                    grouping=grouping,
                    group=value,
                    clips=int(member.sum()),
                    accuracy=float(correct[member].mean()),
                    keyword_clips=int(kw.sum()),
                    frr=float((~correct[kw]).mean()) if kw.any() else None,
                    non_keyword_clips=int(nk.sum()),
                    false_accept_rate=float(pred_keyword[nk].mean()) if nk.any() else None,
                )
            )
    return rows


@dataclass(frozen=True)
class LicenseEntry:
    component: str
    """What it is: a voice, a TTS engine, a corpus, a front-end model."""
    name: str
    license: str


@dataclass(frozen=True)
class ModelCardInputs:
    """Plain inputs of the card (no settings, no tables): the lead's asset fills them."""

    model_name: str
    family: str
    keywords: Sequence[str]
    intended_use: str
    limitations: Sequence[str]
    training_counts: Sequence[tuple[str, str, int]]
    """``(engine, source, clips)`` rows."""
    evaluation: Mapping[str, Mapping[str, float | None]]
    """Evaluation set name -> metric name -> value (accuracy, FRR...), e.g. ``synthetic test``,
    ``held-out voices``, ``held-out engine``, each real source."""
    target_fa_per_hour: float
    frr_at_target: float | None
    threshold: float | None
    group_metrics: Sequence[GroupMetrics]
    licenses: Sequence[LicenseEntry]
    sizes: Mapping[str, int] = field(default_factory=dict)
    operating_point: OperatingPoint | None = None
    """The manifest's operating point: its measured FA/h and FRR with their intervals and the
    usable flag are stated under "Operating point" (nothing more without one)."""
    beside_peers: Sequence[Mapping[str, object]] = ()
    """Rows of the transfer report's ``beside_peers`` table (system, keyword, set, FRR and FA/h
    with their intervals): where a keyword is a phrase a pretrained openWakeWord or
    microWakeWord model spots, the families' numbers and that model's on the same stream; the
    card says them under "Beside the pretrained models" (nothing without rows)."""
    field_false_wakes: FalseWakeRate | None = None
    training_start: str = ""
    """How the shipped network's training started (a re-run warm-starts from the previous
    materialization: ``core/model/warm_start.describe``); said under "Training data"."""
    """How often the model fires on the false wakes devices reported and people confirmed
    (``kws_assets.core.review.field``); the card says it under "Field false wakes"."""


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.{RATE_DECIMALS}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = [
        "| " + " | ".join(escape_cell(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(escape_cell(c) for c in row) + " |" for row in rows]
    return lines


def _bounds_lines(point: OperatingPoint | None) -> list[str]:
    """The operating point's measured FA/h and FRR with their intervals, whether the target was
    established and whether the point is usable: a card must not claim more than its hours of
    negatives and its keyword count allow."""
    if point is None or point.confidence is None:
        return []
    level = f"{point.confidence:.0%}"
    out: list[str] = []
    if point.frr_at_target is not None and point.frr_lower is not None:
        out.append(
            f"Measured on the test streams: FRR {_rate(point.frr_at_target)} ({level} interval "
            f"{_rate(point.frr_lower)}-{_rate(point.frr_upper)}, {point.keywords} keywords) at "
            f"{_rate(point.fa_per_hour_at_target)} false accepts per hour ({level} interval "
            f"{_rate(point.fa_per_hour_lower)}-{_rate(point.fa_per_hour_upper)}, "
            f"{point.negative_hours:g} h of keyword-free audio). Both intervals are exact and "
            "two-sided (Clopper-Pearson, Poisson)."
        )
    if point.target_met_on_validation is False:
        out.append(
            f"The target is not established: where the point was selected, the upper end of "
            f"its FA/h interval ({level}) is above {point.target_fa_per_hour:g} per hour."
        )
    if point.usable is False:
        out.append(f"**Not usable.** {escape_markdown(point.usable_message or '')}")
    return [line for paragraph in out for line in ("", paragraph)]


def _interval(row: Mapping[str, object], name: str, percent: bool) -> str:
    value, lower, upper = (
        float(cast("float", row[k])) for k in (name, f"{name}_lower", f"{name}_upper")
    )
    if percent:
        return f"{value:.1%} ({lower:.1%}-{upper:.1%})"
    return f"{value:.3g} ({lower:.3g}-{upper:.3g})"


def _beside_peers_lines(rows: Sequence[Mapping[str, object]]) -> list[str]:
    """A user who already runs a pretrained model of the same phrase should see whether this one
    is better before switching: each system on the same stream at its own shipped point."""
    if not rows:
        return []
    level = float(cast("float", rows[0].get("level", 0.95)))
    out = [
        "",
        "## Beside the pretrained models",
        "",
        "Where a keyword is a phrase openWakeWord or microWakeWord ships a pretrained model of: "
        "each model family of this project and that pretrained model, each in its own runtime "
        "at its own shipped operating point, on the same evaluation stream (speech none of them "
        "trained on). FRR: the phrase's occurrences not detected; FA/h: every other detection "
        f"per hour of the whole stream. Intervals exact and two-sided at {level:.0%} (a few "
        "minutes and a few phrases: wide).",
        "",
    ]
    out += _table(
        ["evaluation set", "keyword", "system", "phrases", "FRR", "FA/h"],
        [
            (
                r["set"],
                r["keyword"],
                r["system"],
                r["positives"],
                _interval(r, "frr", True) if r["positives"] else "n/a",
                _interval(r, "fa_per_hour", False),
            )
            for r in rows
        ],
    )
    return out


def _field_false_wake_lines(rate: FalseWakeRate | None) -> list[str]:
    if rate is None:
        return []
    return [
        "",
        "## Field false wakes",
        "",
        f"{rate.clips} false wake(s) reported by devices and confirmed by a person "
        f"({rate.in_training} in the train split). Before this retrain the deployed model "
        f"fired on {rate.fired_before} of them ({rate.rate_before:.0%}); this model fires "
        f"(top-1 is a keyword) on {rate.fired_after} ({rate.rate_after:.0%}).",
    ]


def render_model_card(inputs: ModelCardInputs) -> str:
    """The Markdown text of ``MODEL_CARD.md``."""
    c = inputs
    out = [
        f"# Model card: {escape_markdown(c.model_name)}",
        "",
        f"Family: {escape_markdown(c.family)}. Keywords: "
        + ", ".join(escape_markdown(k) for k in c.keywords)
        + ".",
        "",
        "## Intended use",
        "",
        escape_markdown(c.intended_use),
        "",
        "## Limitations",
        "",
    ]
    out += [f"- {escape_markdown(item)}" for item in c.limitations] or ["- none stated"]
    total = sum(n for _, _, n in c.training_counts)
    out += ["", "## Training data", "", f"{total} clips by engine and source.", ""]
    out += _table(
        ["engine", "source", "clips"],
        [(e, s, n) for e, s, n in sorted(c.training_counts, key=lambda r: (r[0], r[1]))],
    )
    if c.training_start:
        out += ["", escape_markdown(c.training_start)]
    metric_names = sorted({m for metrics in c.evaluation.values() for m in metrics})
    out += ["", "## Metrics per evaluation set", ""]
    out += _table(
        ["evaluation set", *metric_names],
        [
            (name, *(_rate(metrics.get(m)) for m in metric_names))
            for name, metrics in c.evaluation.items()
        ],
    )
    out += [
        "",
        "## Operating point",
        "",
        f"FRR at {c.target_fa_per_hour:g} false accepts per hour: {_rate(c.frr_at_target)}"
        f" (threshold {_rate(c.threshold)}).",
        *_bounds_lines(c.operating_point),
        "",
        "## Accuracy and FRR per speaker group",
        "",
        "FRR: keyword clips not recognised as their keyword. False-accept rate: non-keyword "
        "clips taken for a keyword. n/a: the group has no such clips.",
        "",
    ]
    out += _table(
        [
            "grouping",
            "group",
            "clips",
            "accuracy",
            "keyword clips",
            "FRR",
            "non-keyword clips",
            "false-accept rate",
        ],
        [
            (
                g.grouping,
                g.group,
                g.clips,
                _rate(g.accuracy),
                g.keyword_clips,
                _rate(g.frr),
                g.non_keyword_clips,
                _rate(g.false_accept_rate),
            )
            for g in c.group_metrics
        ],
    )
    out += _beside_peers_lines(c.beside_peers)
    out += _field_false_wake_lines(c.field_false_wakes)
    if c.sizes:
        out += ["", "## Sizes", ""]
        out += _table(["quantity", "bytes"], sorted(c.sizes.items()))
    out += ["", "## Licenses", ""]
    out += (
        _table(
            ["component", "name", "license"], [(e.component, e.name, e.license) for e in c.licenses]
        )
        if c.licenses
        else ["No licenses were given: do not ship before every voice, model and corpus has one."]
    )
    return "\n".join(out) + "\n"
