"""Local files written so that readers see the old content or the new, never a part.

Every local write in the project that is not a clip or table of the object store (reports, plots,
the data card, mirrored corpus files, placed Parquet files) goes through here: a temporary file in
the target's own folder (same file system), flushed and fsynced, then ``os.replace``d into place,
and the folder fsynced so the rename survives a power cut.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

COPY_CHUNK_BYTES = 1 << 20
SWAP_ATTEMPTS = 20  # renames lost to concurrent writers of the same folder before giving up


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Make a rename in ``folder`` durable (best effort: not every platform can open folders)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders; the data itself is synced
        pass
    finally:
        os.close(fd)


def _replace_with(
    target: Path, fill: Callable[[BinaryIO], object]
) -> Path:  # fill writes the bytes
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(target.parent)
    return target


def write_file_atomic(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically, creating its folder."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    return _replace_with(Path(path), lambda fh: fh.write(payload))


def copy_file_atomic(source: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Copy ``source`` to ``path`` atomically (for moves across file systems)."""

    def fill(fh: BinaryIO) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, fh, COPY_CHUNK_BYTES)

    return _replace_with(Path(path), fill)


def swap_folder_into_place(staging: Path, directory: Path, attempts: int = SWAP_ATTEMPTS) -> None:
    """Rename the finished folder ``staging`` to ``directory``, retiring a folder already there.

    Two runs writing the same artifact at once race here: between one writer moving the old
    folder aside and renaming its own in, the other may do either.  Each rename is retried until
    one lands (the last writer wins, no writer fails); retired folders are removed.
    """
    for _ in range(attempts):
        try:
            os.replace(staging, directory)  # lands when nothing (or an empty folder) is there
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        retired = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
        try:
            os.replace(directory, retired)
        except FileNotFoundError:
            continue  # another writer moved it first; try our rename again
        try:
            os.replace(staging, directory)
            return
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        finally:
            shutil.rmtree(retired, ignore_errors=True)
    raise OSError(
        errno.EBUSY,
        f"could not rename {staging} to {directory}: "
        f"{attempts} attempts lost to concurrent writers",
    )
