"""Speaker-disjoint train/val/test assignment by a stable hash of the speaker id.

Follows TensorFlow speech_commands' ``which_set``: sha1 of the (salted) name, modulo
MAX_NUM_WAVS_PER_CLASS + 1, read as a percentage; [0, val) is val, [val, val + test) is test, the
rest train.  The split of a speaker depends only on its id and the settings, so adding data never
moves a clip between splits.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

from kws_assets.core.tables import SPLITS, TEST, TRAIN, VAL
from kws_assets.settings import SplitSettings

# speech_commands' constant: 2**27 - 1, about 134M buckets.
MAX_NUM_WAVS_PER_CLASS = 2**27 - 1

# ensure_nonempty_splits only acts with at least this many distinct speakers (one per split).
MIN_SPEAKERS_FOR_ALL_SPLITS = 3


def speaker_percentage(speaker_id: str, salt: str) -> float:
    """The speaker's stable position in [0, 100]: sha1(salt + speaker_id) mod 2**27, scaled."""
    digest = hashlib.sha1((salt + speaker_id).encode("utf-8")).hexdigest()
    return (int(digest, 16) % (MAX_NUM_WAVS_PER_CLASS + 1)) * (100.0 / MAX_NUM_WAVS_PER_CLASS)


def _split_bands(val_percent: float, test_percent: float) -> dict[str, tuple[float, float]]:
    return {
        VAL: (0.0, val_percent),
        TEST: (val_percent, val_percent + test_percent),
        TRAIN: (val_percent + test_percent, math.inf),
    }


def split_for_speaker(speaker_id: str, val_percent: float, test_percent: float, salt: str) -> str:
    """'train', 'val' or 'test' for a speaker, from its hash percentage alone."""
    percentage = speaker_percentage(speaker_id, salt)
    if percentage < val_percent:
        return VAL
    if percentage < val_percent + test_percent:
        return TEST
    return TRAIN


def _distance_to_band(percentage: float, band: tuple[float, float]) -> float:
    low, high = band
    if percentage < low:
        return low - percentage
    if percentage >= high:
        return percentage - high
    return 0.0


def ensure_nonempty_splits(
    speaker_splits: Mapping[str, str], settings: SplitSettings
) -> dict[str, str]:
    """Fill splits the hash left empty, for small speaker sets; returns a new speaker -> split map.

    Rule: only when there are at least MIN_SPEAKERS_FOR_ALL_SPLITS (3) distinct speakers.  For each
    split with a non-zero percentage that has no speaker, in the order val, test, train, move one
    speaker into it: among speakers whose current split has two or more speakers (so no split is
    emptied), the one whose hash percentage is closest to the empty split's band, ties broken by
    speaker id.  The result depends only on the set of speakers and the settings (deterministic)
    and each speaker still has exactly one split (speaker-disjoint).  A speaker moved this way may
    move back once enough speakers exist for the hash alone to fill every split.
    """
    result = dict(speaker_splits)
    if len(result) < MIN_SPEAKERS_FOR_ALL_SPLITS:
        return result
    bands = _split_bands(settings.val_percent, settings.test_percent)
    wanted = {VAL: settings.val_percent > 0, TEST: settings.test_percent > 0, TRAIN: True}
    percentages = {s: speaker_percentage(s, settings.salt) for s in result}
    for split in (VAL, TEST, TRAIN):
        if not wanted[split] or split in result.values():
            continue
        sizes = dict.fromkeys(SPLITS, 0)
        for current in result.values():
            sizes[current] += 1
        donors = [s for s, current in result.items() if sizes[current] >= 2]
        if not donors:
            break
        chosen = min(donors, key=lambda s: (_distance_to_band(percentages[s], bands[split]), s))
        result[chosen] = split
    return result


def assign_splits(speakers: Sequence[str], settings: SplitSettings) -> list[str]:
    """The split of each entry of ``speakers`` (one per row; repeated speakers share a split).

    The hash split of every distinct speaker, then :func:`ensure_nonempty_splits`.
    """
    by_speaker = {
        s: split_for_speaker(s, settings.val_percent, settings.test_percent, settings.salt)
        for s in dict.fromkeys(speakers)
    }
    by_speaker = ensure_nonempty_splits(by_speaker, settings)
    return [by_speaker[s] for s in speakers]
