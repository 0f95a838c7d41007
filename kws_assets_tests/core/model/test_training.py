"""Training: learns a separable synthetic task, stops early, is reproducible, reports correctly.

The tone task and its trained model live in ``kws_assets_tests.tone_task``.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from kws_assets.core.model import training
from kws_assets.core.model.training import (
    NO_AUGMENT,
    MfccAugment,
    augment_batch,
    balanced_class_weights,
    classification_report,
    evaluate,
    predict_logits,
    train_model,
    training_threads,
)
from kws_assets.settings import ModelSettings
from kws_assets_tests.tone_task import (
    FAST_TRAIN,
    SMALL_MODEL,
    TONE_LABELS,
    tone_task,
    trained_tone_model,
)


def test_learns_the_tone_task_and_keeps_the_best_epoch() -> None:
    task, result, lines = trained_tone_model()
    assert result.best_val_accuracy >= 0.9
    assert evaluate(result.model, task.x_test, task.y_test, TONE_LABELS).accuracy >= 0.85
    best = result.history[result.best_epoch - 1]
    assert best.val_accuracy == max(h.val_accuracy for h in result.history)
    # the returned weights are those of the best epoch, not the last one
    restored = evaluate(result.model, task.x_val, task.y_val, TONE_LABELS)
    assert restored.accuracy == pytest.approx(best.val_accuracy)
    assert not result.model.training
    assert len(lines) >= result.epochs_run
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_early_stopping_stops_patience_epochs_after_the_last_gain() -> None:
    _, result, _ = trained_tone_model()
    assert result.stopped_early
    assert result.epochs_run < FAST_TRAIN.max_epochs
    accuracies = [h.val_accuracy for h in result.history]
    last_gain = max(
        i for i, acc in enumerate(accuracies) if acc > max(accuracies[:i], default=-1.0)
    )
    assert result.epochs_run == last_gain + 1 + FAST_TRAIN.patience


def test_the_fused_optimiser_learns_what_the_loop_learns() -> None:
    """Adam's fused kernel (the speech-embedding head's) is the same update up to rounding."""
    task = tone_task()
    settings = FAST_TRAIN.model_copy(update={"max_epochs": 3, "patience": 5})
    results = [
        train_model(
            task.x_train[:80],
            task.y_train[:80],
            task.x_val,
            task.y_val,
            TONE_LABELS,
            ModelSettings(n_filters=8, n_blocks=1),
            settings,
            fused_optimizer=fused,
        )
        for fused in (False, True)
    ]
    loop, fused = (r.model.state_dict() for r in results)
    for name, weights in loop.items():
        torch.testing.assert_close(fused[name], weights, rtol=1e-3, atol=1e-4)
    assert [h.train_loss for h in results[1].history] == pytest.approx(
        [h.train_loss for h in results[0].history], rel=1e-4
    )


def test_min_epochs_holds_off_early_stopping() -> None:
    task = tone_task()
    settings = FAST_TRAIN.model_copy(update={"max_epochs": 8, "patience": 1, "min_epochs": 6})
    result = train_model(
        task.x_train[:40],
        task.y_train[:40],
        task.x_val,
        task.y_val,
        TONE_LABELS,
        ModelSettings(n_filters=8, n_blocks=1),
        settings,
    )
    assert result.epochs_run >= settings.min_epochs


def test_runs_to_max_epochs_when_patience_is_never_exhausted() -> None:
    task = tone_task()
    settings = FAST_TRAIN.model_copy(update={"max_epochs": 2, "patience": 5})
    result = train_model(
        task.x_train[:40],
        task.y_train[:40],
        task.x_val,
        task.y_val,
        TONE_LABELS,
        ModelSettings(n_filters=8, n_blocks=1),
        settings,
    )
    assert result.epochs_run == 2 and not result.stopped_early


def test_same_seed_reproduces_and_other_seed_differs() -> None:
    task = tone_task()
    tiny = ModelSettings(n_filters=16, n_blocks=1)
    settings = FAST_TRAIN.model_copy(update={"max_epochs": 2})
    args = (task.x_train[:96], task.y_train[:96], task.x_val, task.y_val, TONE_LABELS, tiny)
    first = train_model(*args, settings)
    second = train_model(*args, settings)
    other = train_model(*args, settings.model_copy(update={"seed": 1}))
    assert first.history == second.history
    for (name, a), (_, b) in zip(
        first.model.state_dict().items(), second.model.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert not np.allclose(
        predict_logits(first.model, task.x_val), predict_logits(other.model, task.x_val)
    )


def test_thread_count_is_restored() -> None:
    task = tone_task()
    before = torch.get_num_threads()
    train_model(
        task.x_train[:16],
        task.y_train[:16],
        task.x_val[:8],
        task.y_val[:8],
        TONE_LABELS,
        ModelSettings(n_filters=8, n_blocks=1),
        FAST_TRAIN.model_copy(update={"max_epochs": 1, "threads": 1}),
    )
    assert torch.get_num_threads() == before


def test_threads_never_exceed_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "available_cores", lambda: 2)
    assert [training_threads(n) for n in (1, 2, 8)] == [1, 2, 2]


def test_the_trained_model_comes_back_in_the_default_layout() -> None:
    """Training runs NHWC; checkpoints and exports get the usual NCHW tensors."""
    task = tone_task()
    result = train_model(
        task.x_train[:32],
        task.y_train[:32],
        task.x_val[:8],
        task.y_val[:8],
        TONE_LABELS,
        ModelSettings(n_filters=8, n_blocks=1),
        FAST_TRAIN.model_copy(update={"max_epochs": 2, "threads": 1}),
    )
    for name, tensor in result.model.state_dict().items():
        assert tensor.stride() == torch.empty(tensor.shape).stride(), name


def test_rejects_bad_inputs() -> None:
    task = tone_task()
    with pytest.raises(ValueError):
        train_model(
            task.x_train,
            task.y_train,
            task.x_val[:0],
            task.y_val[:0],
            TONE_LABELS,
            SMALL_MODEL,
            FAST_TRAIN,
        )
    with pytest.raises(ValueError):
        train_model(
            task.x_train,
            task.y_train + 10,
            task.x_val,
            task.y_val,
            TONE_LABELS,
            SMALL_MODEL,
            FAST_TRAIN,
        )
    with pytest.raises(ValueError):
        train_model(
            task.x_train,
            task.y_train[:-1],
            task.x_val,
            task.y_val,
            TONE_LABELS,
            SMALL_MODEL,
            FAST_TRAIN,
        )


def test_augmentation_shifts_and_masks() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.arange(4 * 49 * 10, dtype=torch.float32).reshape(4, 49, 10) + 1.0
    torch.testing.assert_close(augment_batch(x, NO_AUGMENT, generator), x)

    shifted = augment_batch(
        x, MfccAugment(max_shift_frames=3, time_masks=0, coeff_masks=0), generator
    )
    for row in range(4):
        matches = [
            s
            for s in range(-3, 4)
            if torch.equal(
                shifted[row, max(s, 0) : 49 + min(s, 0)], x[row, max(-s, 0) : 49 - max(s, 0)]
            )
        ]
        assert len(matches) == 1
        s = matches[0]
        zero_frames = shifted[row, :s] if s > 0 else shifted[row, 49 + s :]
        assert torch.count_nonzero(zero_frames) == 0

    masked = augment_batch(
        x,
        MfccAugment(
            max_shift_frames=0,
            time_masks=1,
            max_time_mask_frames=5,
            coeff_masks=1,
            max_coeff_mask=2,
        ),
        generator,
    )
    zero = masked == 0
    assert torch.equal(masked[~zero], x[~zero])  # only zeroing, nothing moved
    for row in range(4):
        frames_zeroed = int(zero[row].all(dim=1).sum())
        coeffs_zeroed = int(zero[row].all(dim=0).sum())
        assert frames_zeroed <= 5 and coeffs_zeroed <= 2


def test_classification_report_counts() -> None:
    rng = np.random.default_rng(3)
    labels = ["a", "b", "c"]
    y_true = rng.integers(0, 3, size=200)
    y_pred = np.where(rng.random(200) < 0.7, y_true, rng.integers(0, 3, size=200))
    report = classification_report(y_true, y_pred, labels)
    confusion = np.array(report.confusion)
    assert confusion.sum() == 200
    assert report.accuracy == pytest.approx(float((y_true == y_pred).mean()))
    for i, label in enumerate(labels):
        tp = int(((y_true == i) & (y_pred == i)).sum())
        assert report.per_class[label].precision == pytest.approx(tp / (y_pred == i).sum())
        assert report.per_class[label].recall == pytest.approx(tp / (y_true == i).sum())
        assert report.per_class[label].support == int((y_true == i).sum())
    assert report.as_dict()["confusion"] == report.confusion
    never_predicted = classification_report(np.array([0, 1]), np.array([0, 0]), ["a", "b"])
    assert never_predicted.per_class["b"].precision == 0.0
    assert never_predicted.per_class["b"].recall == 0.0


def test_cosine_schedule_decays_the_learning_rate_to_its_floor() -> None:
    from kws_assets.core.model.training import learning_rate_schedule

    settings = FAST_TRAIN.model_copy(
        update={"max_epochs": 10, "lr_schedule": "cosine", "min_lr_fraction": 0.1}
    )
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=settings.learning_rate)
    schedule = learning_rate_schedule(optimizer, settings)
    rates = []
    for _ in range(settings.max_epochs):
        optimizer.step()
        schedule.step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert all(a >= b for a, b in itertools.pairwise(rates))  # never rises
    assert rates[4] == pytest.approx(
        settings.learning_rate * (0.1 + 0.9 * 0.5), rel=1e-6
    )  # halfway
    assert rates[-1] == pytest.approx(settings.learning_rate * 0.1)
    constant = settings.model_copy(update={"lr_schedule": "constant"})
    assert learning_rate_schedule(optimizer, constant) is None


def test_learns_the_tone_task_from_a_table_streamed_in_row_groups(tmp_path) -> None:
    import polars as pl

    from kws_assets.core.features.loader import StreamingSplit

    task = tone_task()
    n = len(task.y_train)
    path = tmp_path / "mfcc.parquet"
    pl.DataFrame(
        {
            "label": [TONE_LABELS[i] for i in task.y_train],
            "split": ["train"] * n,
            "mfcc": pl.Series(task.x_train, dtype=pl.Array(pl.Float32, task.x_train.shape[1:])),
        }
    ).write_parquet(path, row_group_size=20)
    stream = StreamingSplit(
        path,
        TONE_LABELS,
        "train",
        batch_size=FAST_TRAIN.batch_size,
        shuffle_buffer=40,
        chunk_rows=20,
    )
    result = train_model(
        None,
        None,
        task.x_val,
        task.y_val,
        TONE_LABELS,
        SMALL_MODEL,
        FAST_TRAIN,
        augment=None,
        train_batches=stream.epoch,
    )
    assert result.best_val_accuracy >= 0.9
    assert evaluate(result.model, task.x_test, task.y_test, TONE_LABELS).accuracy >= 0.85
    assert stream.stats.rows_read == n * result.epochs_run  # every row, every epoch
    assert stream.stats.max_rows_held <= 40 + FAST_TRAIN.batch_size + 2 * 20 < n
    with pytest.raises(ValueError, match="x_train=None"):
        train_model(
            task.x_train,
            task.y_train,
            task.x_val,
            task.y_val,
            TONE_LABELS,
            SMALL_MODEL,
            FAST_TRAIN,
            train_batches=stream.epoch,
        )


def test_balanced_class_weights_follow_the_shares_and_keep_the_loss_scale() -> None:
    y = np.array([0] * 60 + [1] * 30 + [2] * 10 + [-1] * 5)  # -1: unlabelled rows do not count
    assert balanced_class_weights(y, 4, 0.0) is None
    full = balanced_class_weights(y, 4, 1.0)
    half = balanced_class_weights(y, 4, 0.5)
    assert full is not None and half is not None
    share = np.array([0.6, 0.3, 0.1])
    for weights, power in ((full, 1.0), (half, 0.5)):
        w = weights.numpy()
        assert w[3] == 0.0  # a class with no train rows
        assert w[:3] / w[0] == pytest.approx((share / share[0]) ** -power, rel=1e-5)
        assert float((w[:3] * share).sum()) == pytest.approx(1.0, rel=1e-5)
    # power 1: every class weighs the same in total
    assert (full.numpy()[:3] * share) == pytest.approx(np.full(3, 1 / 3), rel=1e-5)


def test_class_balance_weights_the_training_loss(monkeypatch) -> None:
    import kws_assets.core.model.training as training

    task = tone_task()
    keep = np.concatenate(
        [np.flatnonzero(task.y_train != 1), np.flatnonzero(task.y_train == 1)[:5]]
    )
    seen: list[torch.Tensor | None] = []
    real_loss = torch.nn.functional.cross_entropy

    def spy(logits, target, weight=None, **kwargs):
        seen.append(weight)
        return real_loss(logits, target, weight=weight, **kwargs)

    monkeypatch.setattr(training.nn.functional, "cross_entropy", spy)
    settings = FAST_TRAIN.model_copy(
        update={"max_epochs": 1, "min_epochs": 1, "class_balance": 1.0}
    )
    x, y = task.x_train[keep], task.y_train[keep]
    train_model(x, y, task.x_val, task.y_val, TONE_LABELS, SMALL_MODEL, settings)
    weights = [w for w in seen if w is not None]
    assert weights, "the training loss got no class weights"
    expected = balanced_class_weights(y, len(TONE_LABELS), 1.0)
    assert expected is not None and torch.equal(weights[0], expected)
    assert weights[0][1] > weights[0][0]  # the rare class counts more per row
    with pytest.raises(ValueError, match="class_balance"):
        train_model(
            None,
            None,
            task.x_val,
            task.y_val,
            TONE_LABELS,
            SMALL_MODEL,
            settings,
            train_batches=lambda epoch: iter([(x[:8], y[:8])]),
        )


def test_a_warm_start_begins_where_the_given_weights_are() -> None:
    """Warm-started from a trained model, the first epoch's validation accuracy is already the
    trained model's level; from scratch it is not."""
    task, trained, _ = trained_tone_model()
    settings = FAST_TRAIN.model_copy(
        update={"max_epochs": 1, "min_epochs": 1, "learning_rate": 1e-6}
    )
    args = (task.x_train, task.y_train, task.x_val, task.y_val, TONE_LABELS, SMALL_MODEL)
    warm = train_model(*args, settings, initial_state=trained.model.state_dict())
    cold = train_model(*args, settings)
    assert warm.history[0].val_accuracy == pytest.approx(trained.best_val_accuracy, abs=0.05)
    assert cold.history[0].val_accuracy < trained.best_val_accuracy - 0.2
