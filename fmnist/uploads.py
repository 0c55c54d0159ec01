"""What a batch upload may hold, checked before anything is read: many pictures, or one .zip of them.

A zip is checked from its directory alone, before any member is decompressed: how many members, their total
uncompressed size, no absolute paths and no `..`, no links. Members are then read into memory (never
extracted to disk), each no longer than its directory says (zipfile stops there and checks the CRC), so a
zip bomb that lies in its directory is cut off too.
"""

from __future__ import annotations

import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_FILES = 500  # pictures in one batch
MAX_TOTAL_BYTES = 200 * 1024 * 1024  # their total size, uncompressed
MAX_PICTURE_BYTES = 10 * 1024 * 1024  # one picture, as for a single upload


class BatchRejected(ValueError):
    """The batch cannot be tagged; the message says why, for the person who sent it."""


@dataclass
class Item:
    name: str  # the file's name, or its path inside the zip
    source: object  # a path or an in-memory file
    error: str | None = None  # why this one file is not tagged (the rest of the batch is)


def limits_text() -> str:
    return (f"Up to {MAX_FILES} pictures and {MAX_TOTAL_BYTES // 2**20} MB in all (uncompressed), each under "
            f"{MAX_PICTURE_BYTES // 2**20} MB: pictures, or one .zip of them.")


def _zip_items(path: Path) -> list[Item]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise BatchRejected(f"{path.name} is not a readable zip file ({e}).") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()
                   and not PurePosixPath(m.filename).name.startswith(".")
                   and not m.filename.startswith("__MACOSX/")]
        if not members:
            raise BatchRejected(f"{path.name} holds no files.")
        if len(members) > MAX_FILES:
            raise BatchRejected(f"{path.name} holds {len(members)} files, over the limit of {MAX_FILES}.")
        total = sum(m.file_size for m in members)
        if total > MAX_TOTAL_BYTES:
            raise BatchRejected(f"{path.name} would unpack to {total / 2**20:.0f} MB, over the limit of "
                                f"{MAX_TOTAL_BYTES // 2**20} MB.")
        for m in members:
            parts = PurePosixPath(m.filename.replace("\\", "/"))
            if parts.is_absolute() or m.filename.startswith(("/", "\\")) or ".." in parts.parts or ":" in parts.parts[0]:
                raise BatchRejected(f"{path.name} has a member with an unsafe path ({m.filename!r}); nothing was read.")
            if stat.S_ISLNK(m.external_attr >> 16):
                raise BatchRejected(f"{path.name} has a link ({m.filename!r}); nothing was read.")
        items = []
        for m in members:
            if m.file_size > MAX_PICTURE_BYTES:
                items.append(Item(m.filename, None, f"over {MAX_PICTURE_BYTES // 2**20} MB"))
                continue
            try:
                items.append(Item(m.filename, io.BytesIO(archive.read(m))))
            except (zipfile.BadZipFile, OSError, EOFError) as e:  # a bad CRC, a member larger than declared
                items.append(Item(m.filename, None, f"could not be read from the zip ({e})"))
        return items


def batch_items(paths: list[str | Path] | None) -> list[Item]:
    """The pictures of a batch upload, in the order given (a zip's members in its own order)."""
    paths = [Path(p) for p in (paths or [])]
    if not paths:
        raise BatchRejected("No files were given: upload pictures, or one .zip of them.")
    zips = [p for p in paths if p.suffix.lower() == ".zip"]
    if zips and len(paths) > 1:
        raise BatchRejected("Upload either pictures or one .zip, not both.")
    if zips:
        return _zip_items(zips[0])
    if len(paths) > MAX_FILES:
        raise BatchRejected(f"{len(paths)} files were given, over the limit of {MAX_FILES}.")
    total = sum(p.stat().st_size for p in paths)
    if total > MAX_TOTAL_BYTES:
        raise BatchRejected(f"The files add up to {total / 2**20:.0f} MB, over the limit of "
                            f"{MAX_TOTAL_BYTES // 2**20} MB.")
    return [Item(p.name, p, f"over {MAX_PICTURE_BYTES // 2**20} MB" if p.stat().st_size > MAX_PICTURE_BYTES else None)
            for p in paths]
