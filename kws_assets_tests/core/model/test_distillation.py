"""Distillation: the soft-label loss against hand-computed values and its gradient, the teacher's
logits matched to the student's rows, and a DS-CNN student that learns a teacher's decisions on
the tone task from its soft labels alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kws_assets.core.model.training import (
    NO_AUGMENT,
    UNLABELLED,
    align_teacher_logits,
    distillation_loss,
    predict_logits,
    soft_targets,
    train_model,
    train_student,
)
from kws_assets.settings import DistillSettings, KwsConfig, ModelSettings
from kws_assets_tests.tone_task import FAST_TRAIN, TONE_LABELS, trained_tone_model

TINY = ModelSettings(n_filters=16, n_blocks=1)


def _np_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _logits(seed: int, n: int = 6, k: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    student = torch.tensor(rng.normal(0, 2, (n, k)), dtype=torch.float32)
    teacher = torch.tensor(rng.normal(0, 2, (n, k)), dtype=torch.float32)
    y = torch.tensor(rng.integers(0, k, n), dtype=torch.int64)
    return student, teacher, y


def test_settings_defaults_and_bounds() -> None:
    assert KwsConfig().distill == DistillSettings(enabled=True, temperature=4.0, alpha=0.7)
    with pytest.raises(ValueError):
        DistillSettings(alpha=1.5)
    with pytest.raises(ValueError):
        DistillSettings(temperature=0.0)


def test_loss_matches_the_formula_per_row() -> None:
    student, teacher, y = _logits(0)
    t, alpha = 3.0, 0.7
    p_t = _np_softmax(teacher.numpy() / t)
    log_p_s = np.log(_np_softmax(student.numpy() / t))
    kl = (p_t * (np.log(p_t) - log_p_s)).sum(axis=1)
    ce = -np.log(_np_softmax(student.numpy()))[np.arange(len(y)), y.numpy()]
    expected = (alpha * t * t * kl + (1 - alpha) * ce).mean()
    got = float(distillation_loss(student, teacher, y, t, alpha))
    assert got == pytest.approx(expected, rel=1e-5)
    # alpha 0 is plain cross-entropy; a student that equals the teacher has no soft loss at any T
    assert float(distillation_loss(student, teacher, y, t, 0.0)) == pytest.approx(
        float(torch.nn.functional.cross_entropy(student, y)), rel=1e-6
    )
    shifted = teacher + torch.arange(len(y), dtype=torch.float32)[:, None]  # softmax-invariant
    for temperature in (1.0, 4.0):
        assert float(distillation_loss(shifted, teacher, y, temperature, 1.0)) == pytest.approx(
            0.0, abs=1e-5
        )


def test_soft_gradient_is_t_times_the_posterior_gap() -> None:
    """d/dz [T^2 KL(p_t || softmax(z/T))] = T (softmax(z/T) - p_t): the T^2 keeps the scale."""
    student, teacher, y = _logits(1)
    t = 4.0
    z = student.clone().requires_grad_(True)
    distillation_loss(z, teacher, y, t, 1.0).backward()
    expected = t * (torch.softmax(student / t, 1) - torch.softmax(teacher / t, 1)) / len(y)
    torch.testing.assert_close(z.grad, expected, rtol=1e-4, atol=1e-6)


def test_unlabelled_rows_use_the_soft_term_and_untaught_rows_the_hard_term() -> None:
    student, teacher, y = _logits(2, n=2)
    t, alpha = 2.0, 0.3
    unlabelled = torch.tensor([UNLABELLED, UNLABELLED])
    soft_only = float(distillation_loss(student, teacher, unlabelled, t, alpha))
    assert soft_only == pytest.approx(
        float(distillation_loss(student, teacher, y, t, 1.0)), rel=1e-6
    )
    untaught = torch.full_like(teacher, float("nan"))
    hard_only = float(distillation_loss(student, untaught, y, t, alpha))
    assert hard_only == pytest.approx(
        float(torch.nn.functional.cross_entropy(student, y)), rel=1e-6
    )
    with pytest.raises(ValueError, match="neither"):
        distillation_loss(student, untaught, unlabelled, t, alpha)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(student, teacher, y, t, 1.2)
    with pytest.raises(ValueError, match="shape"):
        distillation_loss(student[:, :3], teacher, y, t, alpha)


def test_soft_targets_flatten_with_temperature() -> None:
    logits = np.array([[4.0, 1.0, 0.0, -2.0]], dtype=np.float32)
    entropies = []
    for t in (0.5, 1.0, 4.0, 20.0):
        p = soft_targets(logits, t).numpy()
        assert p.sum() == pytest.approx(1.0, abs=1e-6) and p.argmax() == 0
        entropies.append(float(-(p * np.log(p)).sum()))
    assert entropies == sorted(entropies)
    with pytest.raises(ValueError):
        soft_targets(logits, 0.0)


def test_teacher_logits_follow_the_student_rows_by_clip_id() -> None:
    logits = np.arange(6, dtype=np.float32).reshape(3, 2)
    out = align_teacher_logits(["c", "x", "a"], ["a", "b", "c"], logits)
    np.testing.assert_array_equal(out[0], logits[2])
    np.testing.assert_array_equal(out[2], logits[0])
    assert np.isnan(out[1]).all()
    with pytest.raises(ValueError, match="repeat"):
        align_teacher_logits(["a"], ["a", "a"], logits[:2])
    with pytest.raises(ValueError, match="one logit row"):
        align_teacher_logits(["a"], ["a", "b"], logits)


def test_bad_teacher_inputs_are_refused() -> None:
    task, teacher, _ = trained_tone_model()
    x, y = task.x_train[:16], task.y_train[:16]
    logits = predict_logits(teacher.model, x)
    args = (
        task.x_val[:8],
        task.y_val[:8],
        TONE_LABELS,
        TINY,
        FAST_TRAIN.model_copy(update={"max_epochs": 1}),
    )
    with pytest.raises(ValueError, match="distill"):
        train_model(x, y, *args, teacher_logits=logits)
    with pytest.raises(ValueError, match="n_train, n_classes"):
        train_model(x, y, *args, teacher_logits=logits[:-1], distill=DistillSettings())
    unlabelled = np.full_like(y, UNLABELLED)
    with pytest.raises(ValueError, match="UNLABELLED"):
        train_model(x, unlabelled, *args)  # no teacher: every row needs its hard label
    untaught = logits.copy()
    untaught[0] = np.nan
    with pytest.raises(ValueError, match="no teacher logits"):
        train_model(x, unlabelled, *args, teacher_logits=untaught, distill=DistillSettings())
    inf = logits.copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="inf"):
        train_model(x, y, *args, teacher_logits=inf, distill=DistillSettings())


def test_a_student_learns_the_teachers_decisions_from_soft_labels_alone() -> None:
    """No hard label in training: whatever the student gets right it learnt from the teacher."""
    task, teacher, _ = trained_tone_model()
    teacher_train = predict_logits(teacher.model, task.x_train)
    teacher_top = predict_logits(teacher.model, task.x_test).argmax(axis=1)
    settings = FAST_TRAIN.model_copy(update={"max_epochs": 15, "min_epochs": 10, "patience": 5})
    result = train_student(
        task.x_train,
        np.full_like(task.y_train, UNLABELLED),
        teacher_train,
        task.x_val,
        task.y_val,
        TONE_LABELS,
        TINY,
        settings,
        DistillSettings(temperature=4.0, alpha=0.7),
        augment=NO_AUGMENT,
    )
    student_top = predict_logits(result.model, task.x_test).argmax(axis=1)
    chance = 1 / len(TONE_LABELS)
    agreement = float((student_top == teacher_top).mean())
    assert agreement >= 2.5 * chance, agreement
    assert all(h.train_accuracy == 0.0 for h in result.history)  # no labelled row to score


def test_distilled_training_is_reproducible_and_differs_from_plain_training() -> None:
    task, teacher, _ = trained_tone_model()
    x, y = task.x_train[:64], task.y_train[:64].copy()
    logits = predict_logits(teacher.model, x)
    logits[::4] = np.nan  # clips the teacher never saw: hard label only
    y[1::4] = UNLABELLED  # clips without a label: teacher only
    settings = FAST_TRAIN.model_copy(update={"max_epochs": 2, "min_epochs": 2})
    args = (task.x_val, task.y_val, TONE_LABELS, TINY, settings)
    first = train_model(x, y, *args, teacher_logits=logits, distill=DistillSettings())
    second = train_model(x, y, *args, teacher_logits=logits, distill=DistillSettings())
    assert first.history_dicts() == second.history_dicts()
    labelled = y != UNLABELLED
    plain = train_model(x[labelled], y[labelled], *args)
    assert first.history_dicts() != plain.history_dicts()
    assert 0.0 <= first.history[-1].train_accuracy <= 1.0


def test_a_streamed_student_learns_each_rows_own_teacher_logits(tmp_path) -> None:
    """Streamed distillation looks a batch's teacher logits up by each row's position in the
    split: a teacher that names the *next* class of every row (alpha 1: soft term only) is what
    the student learns, which it could not if rows and logits were mismatched."""
    import polars as pl

    from kws_assets.core.features.loader import StreamingSplit

    task, _, _ = trained_tone_model()
    n, k = len(task.y_train), len(TONE_LABELS)
    path = tmp_path / "mfcc.parquet"
    pl.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(n)],
            "label": [TONE_LABELS[i] for i in task.y_train],
            "split": ["train"] * n,
            "mfcc": pl.Series(task.x_train, dtype=pl.Array(pl.Float32, task.x_train.shape[1:])),
        }
    ).write_parquet(path)
    shifted = (task.y_train + 1) % k
    teacher = np.eye(k, dtype=np.float32)[shifted] * 8.0
    stream = StreamingSplit(
        path, TONE_LABELS, "train", batch_size=16, shuffle_buffer=32, chunk_rows=20
    )
    settings = FAST_TRAIN.model_copy(update={"max_epochs": 12, "min_epochs": 12})
    result = train_student(
        None,
        None,
        teacher,
        task.x_val,
        (task.y_val + 1) % k,  # early stopping on the teacher's naming too
        TONE_LABELS,
        TINY,
        settings,
        DistillSettings(temperature=2.0, alpha=1.0),
        augment=NO_AUGMENT,
        train_batches=stream.epoch,
    )
    predicted = predict_logits(result.model, task.x_test).argmax(axis=1)
    assert float((predicted == (task.y_test + 1) % k).mean()) >= 0.8
    with pytest.raises(ValueError, match="split rows"):
        train_student(
            None,
            None,
            teacher,
            task.x_val,
            task.y_val,
            TONE_LABELS,
            TINY,
            settings,
            DistillSettings(),
            augment=NO_AUGMENT,
            train_batches=lambda epoch: ((x, y) for x, y, _ in stream.epoch(epoch)),
        )
