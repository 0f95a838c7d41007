"""The render cache: a request rendered once is read back, bit for bit, and never re-rendered."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from kws_assets.core.storage.render_cache import NO_CACHE, RenderCache, request_key


@dataclass(frozen=True)
class Recipe:
    text: str
    rate: float


def test_second_request_comes_from_the_cache(tmp_path: Path) -> None:
    calls: list[str] = []

    def render() -> np.ndarray:
        calls.append("render")
        return np.linspace(-1, 1, 101, dtype=np.float32)

    cache = RenderCache(tmp_path)
    first = cache.audio({"recipe": Recipe("yes", 1.0)}, render)
    again = RenderCache(tmp_path).audio({"recipe": Recipe("yes", 1.0)}, render)
    assert calls == ["render"]
    assert again.dtype == np.float32
    np.testing.assert_array_equal(first, again)
    assert (cache.hits, cache.misses) == (0, 1)


def test_another_request_is_rendered(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path)
    cache.audio({"recipe": Recipe("yes", 1.0)}, lambda: np.zeros(3, np.float32))
    out = cache.audio({"recipe": Recipe("yes", 1.1)}, lambda: np.ones(3, np.float32))
    np.testing.assert_array_equal(out, np.ones(3, np.float32))
    assert cache.misses == 2
    assert request_key({"a": 1, "b": 2}) == request_key({"b": 2, "a": 1})


def test_a_failed_render_is_not_stored(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path)

    def fail() -> np.ndarray:
        raise ValueError("cannot speak it")

    with pytest.raises(ValueError, match="cannot speak"):
        cache.audio({"text": "x"}, fail)
    assert not list(tmp_path.rglob("*.npy"))


def test_a_torn_file_is_a_miss(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path)
    request = {"text": "yes"}
    path = cache.path(request_key(request))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\x93NUMPY garbage")
    out = cache.audio(request, lambda: np.full(4, 0.5, np.float32))
    np.testing.assert_array_equal(out, np.full(4, 0.5, np.float32))
    np.testing.assert_array_equal(np.load(path), out)


def test_no_cache_renders_every_time() -> None:
    calls = []
    for _ in range(2):
        NO_CACHE.audio({"text": "yes"}, lambda: calls.append(1) or np.zeros(1, np.float32))
    assert len(calls) == 2


def _render(item: str) -> np.ndarray | BaseException:
    """A render that cannot speak ``"x"`` and says so as a value."""
    if item == "x":
        return ValueError("cannot speak x")
    return np.full(4, float(len(item)), np.float32)


@pytest.mark.parametrize("workers", [1, 2])
def test_map_renders_the_misses_keeps_the_hits_and_passes_failures_through(
    tmp_path: Path, workers: int
) -> None:
    items = ["yes", "x", "maybe", "no"]
    requests = [{"text": item} for item in items]
    cache = RenderCache(tmp_path)
    cache.audio(requests[0], lambda: np.zeros(4, np.float32))  # rendered before
    out = cache.map(requests, _render, items, workers)
    np.testing.assert_array_equal(out[0], np.zeros(4, np.float32))  # from the cache
    assert isinstance(out[1], ValueError) and "cannot speak x" in str(out[1])
    np.testing.assert_array_equal(out[2], np.full(4, 5.0, np.float32))
    np.testing.assert_array_equal(out[3], np.full(4, 2.0, np.float32))
    assert (cache.hits, cache.misses) == (1, 3)  # the audio() miss, then maybe and no
    rerun = RenderCache(tmp_path)
    again = rerun.map(requests, _render, items, workers)
    assert (rerun.hits, rerun.misses) == (3, 0)  # the failure is not stored: tried again
    assert isinstance(again[1], ValueError)


def test_map_of_blocks_reads_back_what_pieces_stored(tmp_path: Path) -> None:
    cache = RenderCache(tmp_path)
    stored = cache.pieces({"block": 1}, lambda: [np.ones(2, np.float32), np.zeros(0, np.float32)])
    out = RenderCache(tmp_path).map(
        [{"block": 1}], lambda _: pytest.fail("rendered again"), [None], pieces=True
    )
    assert isinstance(out[0], list) and len(out[0]) == 2
    for a, b in zip(stored, out[0], strict=True):
        np.testing.assert_array_equal(a, b)


def test_map_without_a_folder_renders_every_time() -> None:
    out = NO_CACHE.map([{"text": "yes"}], _render, ["yes"])
    np.testing.assert_array_equal(out[0], np.full(4, 3.0, np.float32))


@pytest.mark.parametrize("workers", [1, 2])
def test_map_batches_renders_only_the_misses_in_batches(tmp_path: Path, workers: int) -> None:
    cache = RenderCache(tmp_path / "c")
    calls: list[list[int]] = []

    def render(items):
        calls.append(list(items))
        return [np.full(3, float(i), np.float32) for i in items]

    first = cache.map_batches([{"n": i} for i in range(5)], render, list(range(5)), 2, workers)
    assert [a[0] for a in first] == [0, 1, 2, 3, 4] and cache.misses == 5
    if workers == 1:  # calls are seen here only when they ran here
        assert calls == [[0, 1], [2, 3], [4]]
    calls.clear()
    # two items added in the middle: only they are rendered, together
    items = [0, 1, 10, 2, 11, 3, 4]
    again = cache.map_batches([{"n": i} for i in items], render, items, 4, 1)
    assert [a[0] for a in again] == [float(i) for i in items]
    assert calls == [[10, 11]] and cache.hits == 5
    with pytest.raises(ValueError, match="requests for"):
        cache.map_batches([{"n": 0}], render, [0, 1], 2)
    with pytest.raises(ValueError, match="arrays for"):
        cache.map_batches([{"n": 99}], lambda items: [], [99], 2)
