"""Rendered audio kept by what it was rendered from, so a re-run does not synthesise it again.

The evaluation speaks the same sentences and held-out words on every run (its draws are seeded),
and every TTS render in the project is a pure function of its request (espeak-ng's noise is
seeded from the request, the other engines are deterministic): so the request *is* the content
key.  :class:`RenderCache` stores one ``.npy`` file per request (:meth:`RenderCache.audio`) or
one ``.npz`` per block of requests (:meth:`RenderCache.pieces`) under
``<folder>/<hash[:2]>/<hash>.np[yz]``, the hash a sha256 of the request's canonical JSON and
:data:`CACHE_FORMAT`.  A request that fails (the engine cannot speak it) is not stored and fails
again next time, as it would without the cache.

espeak-ng's output also depends on what the engine spoke before in the process; a caller caching
espeak-ng renders therefore starts the engine afresh before rendering a block (its renders are
then the same as in a new process), and caches blocks rather than single renders when a fresh
start per render would cost more than the render (about 23 ms against 8 ms).

Writes are a temporary file renamed into place, without fsync: this is a cache, and a file
that does not load (a torn write after a power cut) is treated as a miss and rewritten.  The
folder is local (``storage.root``/cache/renders beside the feature cache); ``make clean``
removes it; an engine upgrade that changes its audio needs it cleared (its version is not part
of the key).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from kws_assets.core.parallel import process_map

T = TypeVar("T")
Rendered = np.ndarray | list[np.ndarray]
"""One render (:meth:`RenderCache.audio`) or a block of them (:meth:`RenderCache.pieces`)."""

CACHE_FORMAT = "render-cache-v1"
"""Part of every key: bump it when what a key's renderer returns changes meaning."""


def request_key(request: Mapping[str, object]) -> str:
    """The sha256 of a request (any JSON-able mapping; dataclasses and other objects inside are
    written as their fields or ``repr``), with :data:`CACHE_FORMAT`."""
    text = json.dumps(
        {"format": CACHE_FORMAT, **request}, sort_keys=True, default=_plain, ensure_ascii=True
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plain(value: object) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **dataclasses.asdict(value)}
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):  # pydantic settings
        return {"type": type(value).__name__, **model_dump(mode="json")}
    return repr(value)


@dataclasses.dataclass
class RenderCache:
    """Audio arrays by request; ``folder=None`` renders every time (no cache)."""

    folder: Path | None
    hits: int = 0
    misses: int = 0

    def path(self, key: str) -> Path:
        if self.folder is None:
            raise ValueError("this RenderCache has no folder")
        return self.folder / key[:2] / f"{key}.npy"

    def audio(self, request: Mapping[str, object], render: Callable[[], np.ndarray]) -> np.ndarray:
        """The stored audio of ``request``, else ``render()``'s (stored for next time)."""
        if self.folder is None:
            return render()
        path = self.path(request_key(request))
        cached = self._load(path, pieces=False)
        if isinstance(cached, np.ndarray):
            self.hits += 1
            return cached
        samples = render()
        self.misses += 1
        self._store(path, np.asarray(samples))
        return samples

    def pieces(
        self, request: Mapping[str, object], render: Callable[[], list[np.ndarray]]
    ) -> list[np.ndarray]:
        """:meth:`audio` for a block of renders made together (``render()`` returns one array
        per piece, in order; an empty array for a piece that could not be rendered)."""
        if self.folder is None:
            return render()
        path = self.path(request_key(request)).with_suffix(".npz")
        cached = self._load(path, pieces=True)
        if isinstance(cached, list):
            self.hits += 1
            return cached
        pieces = render()
        self.misses += 1
        self._store(path, [np.asarray(p) for p in pieces])
        return pieces

    def map(
        self,
        requests: Sequence[Mapping[str, object]],
        render: Callable[[T], Rendered | BaseException],
        items: Sequence[T],
        workers: int = 1,
        pieces: bool = False,
    ) -> list[Rendered | BaseException]:
        """Each request's stored audio, else ``render(item)``'s (stored for next time), the
        misses rendered on ``workers`` processes (:func:`kws_assets.core.parallel.process_map`;
        1: here).  ``pieces``: each render is a block (:meth:`pieces`), else one array
        (:meth:`audio`).  ``render`` returns an exception instead of raising it for an item that
        cannot be rendered: it is passed through at that item's place, not stored, and the other
        items still render.  The renders are pure functions of their items (each block starts
        its engine afresh), so the audio is the same for any worker count."""
        paths, stored = self._lookup(requests, len(items), pieces)
        out: list[Rendered | BaseException | None] = list(stored)
        misses = [i for i, value in enumerate(out) if value is None]
        rendered = process_map(render, [items[i] for i in misses], workers)
        for i, value in zip(misses, rendered, strict=True):
            out[i] = value
            path = paths[i]
            if isinstance(value, BaseException):
                continue
            self.misses += 1
            if path is not None:
                self._store(path, value)
        return [value for value in out if value is not None]

    def map_batches(
        self,
        requests: Sequence[Mapping[str, object]],
        render: Callable[[Sequence[T]], Sequence[np.ndarray]],
        items: Sequence[T],
        batch: int,
        workers: int = 1,
    ) -> list[np.ndarray]:
        """:meth:`map` for renders that are cheaper together (a model over a batch): each
        request's stored array, else its item's, the misses rendered ``batch`` at a time
        (``render(items)`` returns one array per item, in order) on ``workers`` processes and
        each stored under its own request, so a re-run with a few items added or changed
        renders only those, whatever batches they fell in before.  ``render`` must give an
        item the same array whatever batch it comes in."""
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        paths, stored = self._lookup(requests, len(items), pieces=False)
        out = [value if isinstance(value, np.ndarray) else None for value in stored]
        misses = [i for i, value in enumerate(out) if value is None]
        groups = [misses[start : start + batch] for start in range(0, len(misses), batch)]
        rendered = process_map(render, [[items[i] for i in group] for group in groups], workers)
        for group, arrays in zip(groups, rendered, strict=True):
            if len(arrays) != len(group):
                raise ValueError(f"render gave {len(arrays)} arrays for {len(group)} items")
            for i, value in zip(group, arrays, strict=True):
                array = out[i] = np.asarray(value)
                self.misses += 1
                path = paths[i]
                if path is not None:
                    self._store(path, array)
        return [value for value in out if value is not None]

    def _lookup(
        self, requests: Sequence[Mapping[str, object]], count: int, pieces: bool
    ) -> tuple[list[Path | None], list[Rendered | None]]:
        """Each request's file (None without a folder) and what it holds (None: a miss); the
        hits counted.  ``count``: the items the requests stand for (they must match)."""
        if len(requests) != count:
            raise ValueError(f"{len(requests)} requests for {count} items")
        suffix = ".npz" if pieces else ".npy"
        paths: list[Path | None] = (
            [self.path(request_key(r)).with_suffix(suffix) for r in requests]
            if self.folder is not None
            else [None] * count
        )
        stored = [self._load(path, pieces) if path is not None else None for path in paths]
        self.hits += sum(value is not None for value in stored)
        return paths, stored

    @staticmethod
    def _load(path: Path, pieces: bool) -> Rendered | None:
        """The audio stored at ``path``, or ``None`` (absent, or a file that does not load)."""
        try:
            if pieces:
                with np.load(path, allow_pickle=False) as stored:
                    return [stored[f"arr_{i}"] for i in range(len(stored.files))]
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, KeyError):
            return None

    def _store(self, path: Path, samples: np.ndarray | list[np.ndarray]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                if isinstance(samples, list):
                    np.savez(fh, *samples)  # arr_0, arr_1, ... in order
                else:
                    np.save(fh, samples, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def summary(self) -> str:
        return f"render cache: {self.hits} hits, {self.misses} rendered afresh"


NO_CACHE = RenderCache(None)
"""Render every time (the default of the functions that take a cache)."""
