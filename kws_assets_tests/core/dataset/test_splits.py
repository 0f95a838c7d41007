"""Tests of kws_assets.core.dataset.splits: stable, speaker-disjoint hash splits."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kws_assets.core.dataset.splits import (
    SPLITS,
    TEST,
    TRAIN,
    VAL,
    assign_splits,
    ensure_nonempty_splits,
    speaker_percentage,
    split_for_speaker,
)
from kws_assets.settings import SplitSettings

SETTINGS = SplitSettings()
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def random_speakers(rng: np.random.Generator, n: int, prefix: str = "spk") -> list[str]:
    return [f"{prefix}-{rng.integers(0, 2**62):x}" for _ in range(n)]


def test_percentage_follows_speech_commands_formula():
    for speaker in ["alice", "bob", "en-us+f3", "ßpeaker ünïcode"]:
        digest = int(hashlib.sha1(("salt" + speaker).encode()).hexdigest(), 16)
        expected = (digest % 2**27) * (100.0 / (2**27 - 1))
        assert speaker_percentage(speaker, "salt") == expected
        assert 0.0 <= expected <= 100.0


def test_split_bands():
    rng = np.random.default_rng(0)
    for speaker in random_speakers(rng, 500):
        p = speaker_percentage(speaker, SETTINGS.salt)
        split = split_for_speaker(speaker, 10.0, 10.0, SETTINGS.salt)
        assert split == (VAL if p < 10 else TEST if p < 20 else TRAIN)


def test_splits_are_deterministic_across_processes():
    speakers = [f"speaker{i}" for i in range(50)]
    here = [split_for_speaker(s, 10.0, 10.0, "salt-x") for s in speakers]
    code = (
        "import json, sys; from kws_assets.core.dataset.splits import split_for_speaker; "
        "print(json.dumps([split_for_speaker(s, 10.0, 10.0, 'salt-x') for s in "
        "json.loads(sys.argv[1])]))"
    )
    for hash_seed in ("1", "999"):
        out = subprocess.run(
            [sys.executable, "-c", code, json.dumps(speakers)],
            capture_output=True,
            text=True,
            check=True,
            cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        assert json.loads(out.stdout) == here


@pytest.mark.parametrize(("val", "test"), [(10.0, 10.0), (5.0, 20.0), (0.0, 15.0)])
def test_fractions_match_percentages_on_10k_speakers(val, test):
    speakers = random_speakers(np.random.default_rng(1), 10_000)
    splits = assign_splits(speakers, SplitSettings(val_percent=val, test_percent=test))
    counts = {name: splits.count(name) / len(splits) * 100 for name in SPLITS}
    assert abs(counts[VAL] - val) < 1.0
    assert abs(counts[TEST] - test) < 1.0
    assert abs(counts[TRAIN] - (100 - val - test)) < 1.5


def test_assign_splits_is_speaker_disjoint_row_by_row():
    rng = np.random.default_rng(2)
    speakers = random_speakers(rng, 40)
    rows = [speakers[i] for i in rng.integers(0, len(speakers), 2000)]
    splits = assign_splits(rows, SETTINGS)
    assert len(splits) == len(rows)
    seen: dict[str, set[str]] = {}
    for speaker, split in zip(rows, splits, strict=True):
        seen.setdefault(speaker, set()).add(split)
    assert all(len(s) == 1 for s in seen.values())
    assert set(splits) == set(SPLITS)


def test_a_speakers_split_never_changes_when_others_are_added():
    rng = np.random.default_rng(3)
    for trial in range(30):
        base = random_speakers(rng, int(rng.integers(60, 200)), prefix=f"t{trial}")
        before = dict(zip(base, assign_splits(base, SETTINGS), strict=True))
        assert set(before.values()) == set(SPLITS)  # large enough: the hash alone fills all
        added = random_speakers(rng, int(rng.integers(1, 300)), prefix=f"new{trial}")
        grown = base + added
        rng.shuffle(grown)
        after = dict(zip(grown, assign_splits(grown, SETTINGS), strict=True))
        assert all(after[s] == before[s] for s in base)


def test_salt_changes_the_assignment():
    speakers = random_speakers(np.random.default_rng(4), 2000)
    a = assign_splits(speakers, SplitSettings(salt="one"))
    b = assign_splits(speakers, SplitSettings(salt="two"))
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 200


def _speakers_hashed_into(split: str, count: int, settings: SplitSettings) -> list[str]:
    found = []
    for i in itertools.count():
        name = f"candidate{i}"
        if (
            split_for_speaker(name, settings.val_percent, settings.test_percent, settings.salt)
            == split
        ):
            found.append(name)
            if len(found) == count:
                return found
    raise AssertionError("unreachable")


def test_ensure_nonempty_fills_val_and_test_with_closest_speakers():
    speakers = _speakers_hashed_into(TRAIN, 3, SETTINGS)
    hashed = dict.fromkeys(speakers, TRAIN)
    filled = ensure_nonempty_splits(hashed, SETTINGS)
    assert sorted(filled.values()) == sorted(SPLITS)
    # All three sit above both bands, so the closest to each band is the lowest percentage left.
    by_percentage = sorted(speakers, key=lambda s: speaker_percentage(s, SETTINGS.salt))
    assert filled[by_percentage[0]] == VAL
    assert filled[by_percentage[1]] == TEST
    assert filled[by_percentage[2]] == TRAIN
    assert hashed == dict.fromkeys(speakers, TRAIN)  # input untouched


def test_ensure_nonempty_fills_train_from_the_closest_speaker():
    speakers = _speakers_hashed_into(VAL, 3, SETTINGS) + _speakers_hashed_into(TEST, 1, SETTINGS)
    hashed = {s: split_for_speaker(s, 10.0, 10.0, SETTINGS.salt) for s in speakers}
    filled = ensure_nonempty_splits(hashed, SETTINGS)
    assert set(filled.values()) == set(SPLITS)
    moved = [s for s in speakers if filled[s] != hashed[s]]
    assert len(moved) == 1 and filled[moved[0]] == TRAIN
    # Test has one speaker (cannot donate); among val speakers the highest percentage is closest
    # to the train band.
    val_speakers = [s for s in speakers if hashed[s] == VAL]
    assert moved[0] == max(val_speakers, key=lambda s: speaker_percentage(s, SETTINGS.salt))


def test_ensure_nonempty_is_order_independent_and_never_empties_a_split():
    rng = np.random.default_rng(5)
    for trial in range(50):
        speakers = random_speakers(rng, int(rng.integers(3, 12)), prefix=f"small{trial}")
        hashed = {s: split_for_speaker(s, 10.0, 10.0, SETTINGS.salt) for s in speakers}
        filled = ensure_nonempty_splits(hashed, SETTINGS)
        assert set(filled.values()) == set(SPLITS)
        assert set(filled) == set(hashed)
        for split in SPLITS:  # a split the hash filled keeps at least one speaker
            if split in hashed.values():
                assert split in filled.values()
        assert sum(filled[s] != hashed[s] for s in speakers) <= 2
        shuffled = list(speakers)
        rng.shuffle(shuffled)
        again = ensure_nonempty_splits({s: hashed[s] for s in shuffled}, SETTINGS)
        assert again == filled
        assert assign_splits(shuffled, SETTINGS) == [filled[s] for s in shuffled]


def test_ensure_nonempty_leaves_tiny_sets_and_zero_percent_splits_alone():
    two = dict.fromkeys(_speakers_hashed_into(TRAIN, 2, SETTINGS), TRAIN)
    assert ensure_nonempty_splits(two, SETTINGS) == two
    no_val = SplitSettings(val_percent=0.0, test_percent=10.0)
    speakers = _speakers_hashed_into(TRAIN, 4, no_val)
    filled = ensure_nonempty_splits(dict.fromkeys(speakers, TRAIN), no_val)
    assert VAL not in filled.values()
    assert sorted(filled.values()).count(TEST) == 1
    assert ensure_nonempty_splits({}, SETTINGS) == {}
    assert assign_splits([], SETTINGS) == []
