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
