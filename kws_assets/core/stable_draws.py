"""Draws that depend on what is drawn from, not on where it sits in a list.

Drawing by position (``pool[rng.integers(len(pool))]``) moves every draw after a member that
joins or leaves the pool: a keyword freed or added would then change the recipe of every
augmented copy that took babble, the surroundings of every keyword placed in context, and with
them their ids and their cached audio and features.  :func:`stable_sample` ranks the members by a
hash of the member and the draw's seed (rendezvous hashing), so a draw changes only where a
member it took left or a new member ranks first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence

import numpy as np


def _member_keys(members: Sequence[str]) -> np.ndarray:
    """A 64-bit key per member name (its blake2b digest): what :func:`stable_sample` ranks."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(m.encode("utf-8"), digest_size=8).digest(), "little")
            for m in members
        ],
        dtype=np.uint64,
    )


_MEMBER_KEYS: dict[tuple[str, ...], np.ndarray] = {}
"""Keys of the pools seen in this process (one pool per split: computed once, not per draw)."""


def stable_sample(
    pool: Sequence[str], n: int, seed: int, exclude: Collection[str] = ()
) -> list[str]:
    """``n`` distinct members of ``pool`` not in ``exclude``: those whose keys mixed with
    ``seed`` rank lowest (rendezvous hashing).

    What is drawn depends on ``seed`` and on the members, not on their positions: when the pool
    changes (a keyword freed or added moves clips in or out of the babble talkers), a draw
    changes only where a member it took left or a new member ranks among its lowest, so nearly
    every augmented copy keeps its recipe, its id and its stored audio (drawing positions would
    re-render every copy that took babble)."""
    if n <= 0 or not pool:
        return []
    members = tuple(pool)
    keys = _MEMBER_KEYS.get(members)
    if keys is None:
        if len(_MEMBER_KEYS) > 16:
            _MEMBER_KEYS.clear()
        keys = _MEMBER_KEYS[members] = _member_keys(members)
    with np.errstate(over="ignore"):  # splitmix64's finaliser wraps by design
        z = keys ^ np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    picked: list[str] = []
    for i in np.argsort(z, kind="stable"):
        if len(picked) == n:
            break
        if members[int(i)] not in exclude:
            picked.append(members[int(i)])
    return picked
