"""Training and evaluation of the DS-CNN on (normalised) MFCC arrays, and of any other classifier
over ``[n, frames, features]`` arrays (the speech-embedding heads pass a ``model_factory``).

Training is seeded and deterministic for a given thread count: the weights are initialised after
``torch.manual_seed(seed)`` and the batch order and augmentation draw from one seeded generator.
Early stopping watches validation accuracy: training stops once it has not risen for ``patience``
epochs.  The weights kept are those of the best epoch, where "best" is the highest validation
accuracy with ties broken by the lower validation loss.  With ``lr_schedule: cosine`` the
learning rate decays along a half cosine over ``max_epochs`` (see ``learning_rate_schedule``).

Distillation (:func:`train_student`): given a teacher's logits per training row, the loss becomes
:func:`distillation_loss` (the teacher's posteriors at a temperature plus the hard labels); rows
with hard label :data:`UNLABELLED` learn from the teacher alone.  Validation, and so early
stopping, always uses the hard labels.  Without a teacher nothing changes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from kws_assets.core.model.networks import build_model
from kws_assets.core.parallel import available_cores
from kws_assets.settings import DistillSettings, ModelSettings, SpecAugmentSettings, TrainSettings

EVAL_BATCH = 512
"""Rows per forward pass when predicting (no gradients, so it can be larger than training's)."""

TrainBatches = Callable[[int], Iterable[tuple[np.ndarray, ...]]]
"""The training rows of one epoch (given its number) as ``(x, y)`` or ``(x, y, rows)`` batches,
``rows`` each row's position in the train split (what a teacher's logits are indexed by), e.g.
``feature_loader.StreamingSplit.epoch``."""

UNLABELLED = -1
"""The hard label of a training row that has none: with a teacher, it learns from the soft
target alone (e.g. unlabelled running speech)."""


@dataclass(frozen=True)
class MfccAugment:
    """Training-time augmentation on normalised MFCC tensors ``[N, n_frames, n_mfcc]``.

    A random time shift of up to ``max_shift_frames`` frames either way (frames shifted in are
    zero, i.e. the train mean after normalisation), then ``time_masks`` SpecAugment-style masks
    of up to ``max_time_mask_frames`` frames and ``coeff_masks`` masks of up to
    ``max_coeff_mask`` coefficients, all set to zero.
    """

    max_shift_frames: int = 3
    time_masks: int = 1
    max_time_mask_frames: int = 4
    coeff_masks: int = 0
    max_coeff_mask: int = 2

    @property
    def active(self) -> bool:
        return self.max_shift_frames > 0 or self.time_masks > 0 or self.coeff_masks > 0

    @classmethod
    def from_settings(cls, settings: SpecAugmentSettings) -> MfccAugment:
        """The augmentation ``train.spec_augment`` in the config describes."""
        return cls(**settings.model_dump())

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return augment_batch(x, self, generator)


@dataclass(frozen=True)
class EmbeddingAugment:
    """SpecAugment-style masking of speech-embedding sequences ``[N, n_frames, 96]``.

    A random shift of up to ``max_shift_frames`` embedding frames (80 ms each) either way, then
    ``time_masks`` masks of up to ``max_time_mask_frames`` frames and ``feature_masks`` masks of
    up to ``max_feature_mask`` embedding dimensions, all set to zero.  The same maths as
    :class:`MfccAugment` on a different axis vocabulary.
    """

    max_shift_frames: int = 1
    time_masks: int = 1
    max_time_mask_frames: int = 2
    feature_masks: int = 1
    max_feature_mask: int = 12

    @property
    def active(self) -> bool:
        return self.max_shift_frames > 0 or self.time_masks > 0 or self.feature_masks > 0

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return shift_and_mask(
            x,
            generator,
            self.max_shift_frames,
            self.time_masks,
            self.max_time_mask_frames,
            self.feature_masks,
            self.max_feature_mask,
        )


class BatchAugment(Protocol):
    """What ``train_model`` needs of an augmentation: whether it does anything, and how."""

    @property
    def active(self) -> bool: ...

    def apply(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor: ...


NO_AUGMENT = MfccAugment(max_shift_frames=0, time_masks=0, coeff_masks=0)


@dataclass(frozen=True)
class Replay:
    """A warm start's epochs: every train row of the ``focus`` classes (the labels it added,
    whose output rows are fresh) and a new random ``share`` of the other rows each epoch (the
    labels it kept, which the previous weights already know)."""

    focus: frozenset[int]
    share: float

    @classmethod
    def of(cls, added: Sequence[str], labels: Sequence[str], share: float) -> Replay | None:
        """The replay of a warm start that added ``added`` (None: every row, every epoch)."""
        if share >= 1.0:
            return None
        return cls(frozenset(labels.index(a) for a in added if a in labels), share)

    def rows(self, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A mask of the rows of ``y`` one epoch trains on."""
        focus = torch.isin(y, torch.tensor(sorted(self.focus), dtype=y.dtype))
        return focus | (torch.rand(y.shape[0], generator=generator) < self.share)


@dataclass(frozen=True)
class EpochStats:
    """Metrics of one training epoch."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float


@dataclass
class TrainResult:
    """The best model (eval mode, CPU) and how training went."""

    model: nn.Module  # a DSCNN unless train_model was given a model_factory
    history: list[EpochStats]
    best_epoch: int
    epochs_run: int
    best_val_accuracy: float
    best_val_loss: float
    stopped_early: bool

    def history_dicts(self) -> list[dict[str, float]]:
        return [asdict(h) for h in self.history]


@dataclass(frozen=True)
class ClassMetrics:
    precision: float
    recall: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    """Accuracy, per-class precision/recall and the confusion matrix (rows true, columns
    predicted)."""

    accuracy: float
    n: int
    labels: list[str]
    per_class: dict[str, ClassMetrics]
    confusion: list[list[int]] = field(repr=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "accuracy": self.accuracy,
            "n": self.n,
            "labels": list(self.labels),
            "per_class": {k: asdict(v) for k, v in self.per_class.items()},
            "confusion": [list(row) for row in self.confusion],
        }


def _check_xy(
    x: np.ndarray, y: np.ndarray, n_classes: int, name: str, allow_unlabelled: bool = False
) -> None:
    if x.ndim != 3:
        raise ValueError(f"{name}: features must be [n, n_frames, n_mfcc], got {x.shape}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: need one label per row, got x {x.shape} and y {y.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: no rows")
    lowest = UNLABELLED if allow_unlabelled else 0
    if not allow_unlabelled and y.min() == UNLABELLED:
        raise ValueError(
            f"{name}: rows labelled UNLABELLED ({UNLABELLED}) learn from a teacher "
            "only: pass teacher_logits (train_student) or drop them"
        )
    if y.min() < lowest or y.max() >= n_classes:
        raise ValueError(
            f"{name}: label indices must lie in [0, {n_classes})"
            + (f" or be UNLABELLED ({UNLABELLED})" if allow_unlabelled else "")
        )
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: features contain NaN or inf")


def augment_batch(x: torch.Tensor, aug: MfccAugment, generator: torch.Generator) -> torch.Tensor:
    """A randomly shifted and masked copy of ``x`` ``[N, T, C]`` (see ``MfccAugment``)."""
    return shift_and_mask(
        x,
        generator,
        aug.max_shift_frames,
        aug.time_masks,
        aug.max_time_mask_frames,
        aug.coeff_masks,
        aug.max_coeff_mask,
    )


def shift_and_mask(
    x: torch.Tensor,
    generator: torch.Generator,
    max_shift: int,
    time_masks: int,
    max_time_mask: int,
    feature_masks: int,
    max_feature_mask: int,
) -> torch.Tensor:
    """``x`` ``[N, T, C]`` shifted by up to ``max_shift`` frames (zeros shifted in), then with
    ``time_masks`` bands of up to ``max_time_mask`` frames and ``feature_masks`` bands of up to
    ``max_feature_mask`` channels zeroed, drawn per row from ``generator``."""
    n, t, c = x.shape
    out = x
    if max_shift > 0:
        shifts = torch.randint(-max_shift, max_shift + 1, (n, 1), generator=generator)
        src = torch.arange(t).unsqueeze(0) - shifts  # frame each output frame is copied from
        valid = (src >= 0) & (src < t)
        gathered = torch.gather(out, 1, src.clamp(0, t - 1).unsqueeze(-1).expand(n, t, c))
        out = gathered * valid.unsqueeze(-1)
    for _ in range(time_masks):
        out = _mask_axis(out, axis=1, max_width=max_time_mask, generator=generator)
    for _ in range(feature_masks):
        out = _mask_axis(out, axis=2, max_width=max_feature_mask, generator=generator)
    return out


def _mask_axis(
    x: torch.Tensor, axis: int, max_width: int, generator: torch.Generator
) -> torch.Tensor:
    """Zero one random band of up to ``max_width`` positions along ``axis`` per row."""
    n, size = x.shape[0], x.shape[axis]
    width = torch.randint(0, max(0, min(max_width, size)) + 1, (n, 1), generator=generator)
    start = (torch.rand((n, 1), generator=generator) * (size - width + 1)).floor()
    pos = torch.arange(size).unsqueeze(0)
    keep = ~((pos >= start) & (pos < start + width))  # [n, size]
    keep = keep.unsqueeze(2) if axis == 1 else keep.unsqueeze(1)
    return x * keep


def predict_logits(model: nn.Module, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Logits ``[n, n_classes]`` of a model for features ``[n, n_frames, n_mfcc]`` (eval mode)."""
    was_training = model.training
    model.eval()
    outputs: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(x), batch_size):
            chunk = torch.from_numpy(
                np.ascontiguousarray(x[start : start + batch_size], np.float32)
            )
            outputs.append(model(chunk).numpy())
    model.train(was_training)
    if not outputs:
        return np.empty((0, getattr(model, "n_classes", 0)), dtype=np.float32)
    return np.concatenate(outputs).astype(np.float32)


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str]
) -> EvalReport:
    """An ``EvalReport`` from true and predicted class indices (precision 0 for unpredicted
    classes)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    per_class: dict[str, ClassMetrics] = {}
    for i, label in enumerate(labels):
        predicted = int(confusion[:, i].sum())
        support = int(confusion[i, :].sum())
        hits = int(confusion[i, i])
        per_class[label] = ClassMetrics(
            precision=hits / predicted if predicted else 0.0,
            recall=hits / support if support else 0.0,
            support=support,
        )
    n = int(y_true.shape[0])
    accuracy = float(np.trace(confusion) / n) if n else 0.0
    return EvalReport(
        accuracy=accuracy,
        n=n,
        labels=list(labels),
        per_class=per_class,
        confusion=confusion.tolist(),
    )


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, labels: Sequence[str]) -> EvalReport:
    """Accuracy, per-class precision/recall and confusion matrix of a model on ``(x, y)``."""
    logits = predict_logits(model, x)
    return classification_report(y, logits.argmax(axis=1), labels)


def _loss_and_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    losses, hits = 0.0, 0
    with torch.inference_mode():
        for start in range(0, x.shape[0], EVAL_BATCH):
            logits = model(x[start : start + EVAL_BATCH])
            target = y[start : start + EVAL_BATCH]
            losses += float(nn.functional.cross_entropy(logits, target, reduction="sum"))
            hits += int((logits.argmax(1) == target).sum())
    return losses / x.shape[0], hits / x.shape[0]


def soft_targets(teacher_logits: np.ndarray | torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's posteriors at ``temperature``: ``softmax(logits / T)`` per row.  Teachers
    hand over logits, not probabilities, so that any temperature can be taken afterwards."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = torch.as_tensor(teacher_logits, dtype=torch.float32)
    return torch.softmax(logits / temperature, dim=-1)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    y: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """Mean over rows of ``alpha * T^2 * KL(p_teacher || p_student) + (1 - alpha) * CE(y)``.

    ``p_*`` are the posteriors at temperature ``T`` (Hinton et al. 2015; the ``T^2`` keeps the
    soft term's gradients on the hard term's scale as ``T`` grows).  A row whose ``y`` is
    :data:`UNLABELLED` has the soft term only (weight 1); a row whose teacher logits are NaN (no
    teacher for that clip) has the hard cross-entropy only (weight 1).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} and teacher logits "
            f"{tuple(teacher_logits.shape)} differ in shape"
        )
    labelled = y != UNLABELLED
    taught = ~torch.isnan(teacher_logits).any(dim=1)
    if not bool((labelled | taught).all()):
        raise ValueError("a row has neither a hard label nor teacher logits")
    log_student = torch.log_softmax(student_logits / temperature, dim=1)
    log_teacher = torch.log_softmax(torch.nan_to_num(teacher_logits) / temperature, dim=1)
    soft = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=1) * temperature**2
    hard = nn.functional.cross_entropy(student_logits, y.clamp(min=0), reduction="none")
    soft_weight = torch.where(labelled, torch.full_like(soft, alpha), torch.ones_like(soft))
    soft_weight = soft_weight * taught
    hard_weight = torch.where(taught, torch.full_like(hard, 1.0 - alpha), torch.ones_like(hard))
    hard_weight = hard_weight * labelled
    return (soft_weight * soft + hard_weight * hard).mean()


def align_teacher_logits(
    student_ids: Sequence[str], teacher_ids: Sequence[str], teacher_logits: np.ndarray
) -> np.ndarray:
    """The teacher's logits reordered to the student's rows (matched by clip id); a student row
    whose clip the teacher never saw gets NaN logits (:func:`distillation_loss`: hard label
    only)."""
    logits = np.asarray(teacher_logits, dtype=np.float32)
    if logits.ndim != 2 or logits.shape[0] != len(teacher_ids):
        raise ValueError(
            f"need one logit row per teacher clip id, got {logits.shape} for {len(teacher_ids)} ids"
        )
    where = {clip_id: i for i, clip_id in enumerate(teacher_ids)}
    if len(where) != len(teacher_ids):
        raise ValueError("teacher clip ids repeat: one row per clip expected")
    out = np.full((len(student_ids), logits.shape[1]), np.nan, dtype=np.float32)
    rows = [(i, where[c]) for i, c in enumerate(student_ids) if c in where]
    if rows:
        student_rows, teacher_rows = map(list, zip(*rows, strict=True))
        out[student_rows] = logits[teacher_rows]
    return out


def learning_rate_schedule(
    optimizer: torch.optim.Optimizer, settings: TrainSettings
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """``cosine``: the learning rate falls along a half cosine from ``learning_rate`` to
    ``learning_rate * min_lr_fraction`` over ``max_epochs`` (stepped once per epoch), which lets
    a fixed epoch budget end on small, careful steps; ``constant``: no schedule."""
    if settings.lr_schedule == "constant":
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer,
        T_max=settings.max_epochs,
        eta_min=settings.learning_rate * settings.min_lr_fraction,
    )


def balanced_class_weights(
    y_train: np.ndarray, n_classes: int, power: float
) -> torch.Tensor | None:
    """Per-class loss weights ``share ** -power`` (share: the class's fraction of the labelled
    train rows), scaled so the mean weight over those rows is 1 (the loss keeps its size and the
    learning rate its meaning); None for ``power == 0``.  A class without train rows gets weight
    0 (it has no loss term anyway)."""
    labelled = y_train[y_train >= 0]
    return class_weights_from_counts(np.bincount(labelled, minlength=n_classes), power)


def class_weights_from_counts(
    counts: Sequence[int] | np.ndarray, power: float
) -> torch.Tensor | None:
    """:func:`balanced_class_weights` from the labelled train rows per class."""
    if power == 0:
        return None
    counts = np.asarray(counts, dtype=np.float64)
    if counts.sum() == 0:
        return None
    share = counts / counts.sum()
    weights = np.where(counts > 0, np.power(np.maximum(share, 1e-12), -power), 0.0)
    weights /= float((weights * share).sum())  # mean over rows = sum(share * weight) = 1
    return torch.tensor(weights, dtype=torch.float32)


def train_model(
    x_train: np.ndarray | None,
    y_train: np.ndarray | None,
    x_val: np.ndarray,
    y_val: np.ndarray,
    labels: Sequence[str],
    model_settings: ModelSettings,
    train_settings: TrainSettings,
    log: Callable[[str], None] | None = None,
    augment: BatchAugment | None = MfccAugment(),
    model_factory: Callable[[], nn.Module] | None = None,
    teacher_logits: np.ndarray | None = None,
    distill: DistillSettings | None = None,
    train_batches: TrainBatches | None = None,
    train_class_counts: Sequence[int] | None = None,
    initial_state: Mapping[str, torch.Tensor] | None = None,
    fused_optimizer: bool = False,
    replay: Replay | None = None,
) -> TrainResult:
    """Train a DS-CNN with Adam and cross-entropy; keep the best validation epoch.

    ``x_*`` are normalised features ``[n, n_frames, n_mfcc]`` (float32) and ``y_*`` class indices
    into ``labels``.  ``augment=None`` (or ``NO_AUGMENT``) trains on the features as they are.
    ``model_factory`` builds another network instead of the DS-CNN (called after seeding, so its
    initial weights are reproducible; ``model_settings`` is then unused), e.g. a speech-embedding
    head over ``[n, n_frames, 96]`` with an :class:`EmbeddingAugment`.

    ``teacher_logits`` ``[n_train, n_classes]`` (with ``distill``: temperature and alpha) trains
    on :func:`distillation_loss` instead of cross-entropy (see :func:`train_student`).

    ``train_batches`` (with ``x_train = y_train = None``) streams the training rows instead:
    called with the epoch number, it yields ``(x, y)`` batches, e.g.
    ``feature_loader.StreamingSplit(...).epoch``, so the train split is never held whole.
    With ``teacher_logits`` (``[n_train_split_rows, n_classes]``) its batches must carry each
    row's position in the split (``(x, y, rows)``); with ``train.class_balance`` it needs
    ``train_class_counts`` (train rows per class, e.g. ``StreamingSplit.counts``).

    ``initial_state`` (a state dict of the same network) warm-starts training from those
    weights instead of a fresh initialisation: a model that is already close (the previous
    mining round's head, the DS-CNN trained on the same table) needs a fraction of the epochs.
    The optimiser and the learning-rate schedule start afresh.

    ``fused_optimizer`` takes Adam's fused kernel (one call for every weight instead of a
    Python loop over them): the same update up to rounding (3e-7 after 50 steps of a head),
    a quarter of the time per step (0.25 against 1.19 ms for the speech-embedding head), which
    matters where steps are tiny (the head) and not where the network's compute dominates.

    ``replay`` (a warm start's, :class:`Replay`) trains each epoch on the rows of the labels the
    warm start added and a fresh share of the others; a streamed split trains on every row.
    """
    n_classes = len(labels)
    x_val = np.ascontiguousarray(x_val, dtype=np.float32)
    y_val = np.asarray(y_val, dtype=np.int64)
    _check_xy(x_val, y_val, n_classes, "val")
    if train_batches is not None:
        if x_train is not None or y_train is not None:
            raise ValueError(
                "train_batches streams the train split: pass x_train=None and y_train=None"
            )
        x_train = np.empty((0, *x_val.shape[1:]), dtype=np.float32)
        y_train = np.empty(0, dtype=np.int64)
    elif x_train is None or y_train is None:
        raise ValueError("train_model needs x_train and y_train, or train_batches")
    else:
        x_train = np.ascontiguousarray(x_train, dtype=np.float32)
        y_train = np.asarray(y_train, dtype=np.int64)
        _check_xy(x_train, y_train, n_classes, "train", allow_unlabelled=teacher_logits is not None)
    teacher = (
        None
        if teacher_logits is None
        else _check_teacher(teacher_logits, y_train, n_classes, streamed=train_batches is not None)
    )
    if teacher is not None and distill is None:
        raise ValueError(
            "teacher_logits need distill settings (temperature, alpha): pass "
            "distill=DistillSettings(...)"
        )
    if x_train.shape[1:] != x_val.shape[1:]:
        raise ValueError(f"train/val feature shapes differ: {x_train.shape} vs {x_val.shape}")
    say = log or (lambda _msg: None)
    augment = augment if augment is not None and augment.active else None

    if train_batches is None:
        class_weights = balanced_class_weights(y_train, n_classes, train_settings.class_balance)
    elif train_settings.class_balance > 0 and train_class_counts is None:
        raise ValueError(
            "train.class_balance on a streamed split needs train_class_counts (train rows per "
            "class, e.g. StreamingSplit.counts in label order)"
        )
    else:
        class_weights = class_weights_from_counts(
            list(train_class_counts or [0] * n_classes), train_settings.class_balance
        )

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(training_threads(train_settings.threads))
    try:
        torch.manual_seed(train_settings.seed)
        generator = torch.Generator().manual_seed(train_settings.seed)
        model = (
            model_factory() if model_factory is not None else build_model(n_classes, model_settings)
        )
        if initial_state is not None:
            model.load_state_dict(initial_state)
        # NHWC convolutions and batch norms: 1.2-1.5x faster per DS-CNN step on a CPU than
        # NCHW in our runs; a no-op for a network without 4-D weights.  The model returns to the
        # default layout before it is handed back (checkpoints and exports never see NHWC).
        # (Module.to takes memory_format at run time; its type stubs do not list it.)
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        optimizer = torch.optim.Adam(
            model.parameters(),
            lr=train_settings.learning_rate,
            weight_decay=train_settings.weight_decay,
            fused=fused_optimizer or None,
        )
        scheduler = learning_rate_schedule(optimizer, train_settings)
        xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
        xv, yv = torch.from_numpy(x_val), torch.from_numpy(y_val)

        history: list[EpochStats] = []
        best_state = copy.deepcopy(model.state_dict())
        best_key = (-1.0, float("-inf"))  # (val accuracy, -val loss): larger is better
        best_epoch = 0
        best_acc_for_patience = -1.0
        epochs_without_gain = 0
        stopped_early = False

        def epoch_batches(
            epoch: int,
        ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
            """(x, y, row indices or None) per batch: from memory, or from ``train_batches``."""
            if train_batches is not None:
                for batch in train_batches(epoch):
                    xs, ys = batch[0], batch[1]
                    rows = torch.from_numpy(batch[2]) if len(batch) > 2 else None
                    if teacher is not None and rows is None:
                        raise ValueError(
                            "streamed distillation needs each batch's split rows: (x, y, rows)"
                        )
                    yield torch.from_numpy(np.ascontiguousarray(xs)), torch.from_numpy(ys), rows
                return
            order = torch.randperm(xt.shape[0], generator=generator)
            if replay is not None:
                order = order[replay.rows(yt[order], generator)]
            for start in range(0, order.shape[0], train_settings.batch_size):
                idx = order[start : start + train_settings.batch_size]
                yield xt[idx], yt[idx], idx

        for epoch in range(1, train_settings.max_epochs + 1):
            model.train()
            loss_sum, hits, seen, labelled = 0.0, 0, 0, 0
            for xb, yb, idx in epoch_batches(epoch):
                if augment is not None:
                    xb = augment.apply(xb, generator)
                logits = model(xb)
                if teacher is None or distill is None:  # distill is set with a teacher (above)
                    loss = nn.functional.cross_entropy(logits, yb, weight=class_weights)
                else:
                    loss = distillation_loss(
                        logits, teacher[idx], yb, distill.temperature, distill.alpha
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += float(loss.detach()) * yb.shape[0]
                hits += int((logits.detach().argmax(1) == yb).sum())  # UNLABELLED never hits
                seen += int(yb.shape[0])
                labelled += int((yb != UNLABELLED).sum())
            if seen == 0:
                raise ValueError(f"epoch {epoch} had no training rows: the train split is empty")
            if scheduler is not None:
                scheduler.step()
            val_loss, val_acc = _loss_and_accuracy(model, xv, yv)
            stats = EpochStats(
                epoch=epoch,
                train_loss=loss_sum / seen,
                train_accuracy=hits / max(1, labelled),
                val_loss=val_loss,
                val_accuracy=val_acc,
            )
            history.append(stats)
            say(
                f"epoch {epoch}/{train_settings.max_epochs}: train loss {stats.train_loss:.4f}"
                f" acc {stats.train_accuracy:.3f}"
                f" | val loss {val_loss:.4f} acc {val_acc:.3f}"
            )
            key = (val_acc, -val_loss)
            if key > best_key:
                best_key, best_epoch = key, epoch
                best_state = copy.deepcopy(model.state_dict())
            if val_acc > best_acc_for_patience:
                best_acc_for_patience = val_acc
                epochs_without_gain = 0
            else:
                epochs_without_gain += 1
                if (
                    epochs_without_gain >= train_settings.patience
                    and epoch >= train_settings.min_epochs
                ):
                    stopped_early = epoch < train_settings.max_epochs
                    say(
                        f"early stop at epoch {epoch}: no val accuracy gain for "
                        f"{train_settings.patience} epochs (best epoch {best_epoch})"
                    )
                    break

        model = model.to(memory_format=torch.contiguous_format)
        model.load_state_dict(best_state)
        model.eval()
        return TrainResult(
            model=model,
            history=history,
            best_epoch=best_epoch,
            epochs_run=len(history),
            best_val_accuracy=best_key[0],
            best_val_loss=-best_key[1],
            stopped_early=stopped_early,
        )
    finally:
        torch.set_num_threads(previous_threads)


def training_threads(configured: int) -> int:
    """Torch threads for a training: ``train.threads``, never more than the cores this process
    may use.  More threads than cores make every small kernel's threads wait for each other's
    time slices: on 2 cores busy with other work, 2 threads trained a DS-CNN 7x slower per row
    than 1 (73.8 against 10.3 ms/row, same machine, same minute)."""
    return max(1, min(configured, available_cores()))


def _check_teacher(
    teacher_logits: np.ndarray, y_train: np.ndarray, n_classes: int, streamed: bool = False
) -> torch.Tensor:
    """The teacher's logits as a tensor, after checking they fit the training rows (a streamed
    split: only the class count; its batches index the rows)."""
    logits = np.ascontiguousarray(teacher_logits, dtype=np.float32)
    if streamed:
        if logits.ndim != 2 or logits.shape[1] != n_classes:
            raise ValueError(f"teacher_logits must be [n_train, {n_classes}], got {logits.shape}")
    elif logits.shape != (y_train.shape[0], n_classes):
        raise ValueError(
            f"teacher_logits must be [n_train, n_classes] = "
            f"[{y_train.shape[0]}, {n_classes}], got {logits.shape}"
        )
    if np.isinf(logits).any():
        raise ValueError("teacher_logits contain inf (NaN rows mean 'no teacher for this clip')")
    missing = np.isnan(logits).any(axis=1)
    if not streamed and (missing & (y_train == UNLABELLED)).any():
        raise ValueError(
            f"{int((missing & (y_train == UNLABELLED)).sum())} UNLABELLED rows have "
            "no teacher logits: drop them or give them the teacher's logits"
        )
    return torch.from_numpy(logits)


def train_student(
    x_train: np.ndarray | None,
    y_train: np.ndarray | None,
    teacher_logits: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    labels: Sequence[str],
    model_settings: ModelSettings,
    train_settings: TrainSettings,
    distill: DistillSettings,
    log: Callable[[str], None] | None = None,
    augment: BatchAugment | None = MfccAugment(),
    train_batches: TrainBatches | None = None,
    train_class_counts: Sequence[int] | None = None,
    initial_state: Mapping[str, torch.Tensor] | None = None,
    replay: Replay | None = None,
) -> TrainResult:
    """Distil a teacher into a DS-CNN of ``model_settings``: :func:`train_model` on
    :func:`distillation_loss` over the teacher's ``teacher_logits`` ``[n_train, n_classes]``
    (NaN rows: no teacher for that clip) and the hard labels ``y_train`` (:data:`UNLABELLED`:
    none), early-stopped on the hard validation labels ``y_val``.  ``train_batches`` streams
    the train split instead (batches ``(x, y, rows)``, see :func:`train_model`);
    ``initial_state`` warm-starts it (e.g. from the DS-CNN trained on the hard labels)."""
    return train_model(
        x_train,
        y_train,
        x_val,
        y_val,
        labels,
        model_settings,
        train_settings,
        log=log,
        augment=augment,
        teacher_logits=teacher_logits,
        distill=distill,
        train_batches=train_batches,
        train_class_counts=train_class_counts,
        initial_state=initial_state,
        replay=replay,
    )
