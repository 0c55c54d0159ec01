"""What a batch upload may hold: many pictures, or one .zip of them. Memory is bounded by what the server
allows, never by what an upload claims.

A zip is checked from its directory alone, before any member is decompressed: how many members, their total
uncompressed size, no absolute paths and no `..`, no links. Each member is then decompressed by this module,
in chunks, into memory (never onto disk), and cut off at the smaller of its directory's size and the
per-picture limit. zipfile itself cannot be trusted to do that: it decompresses bzip2 and LZMA members chunk
by chunk with no bound, so a 1.3 KB zip whose directory claimed 1,000 bytes took 3.1 GB of a server's memory
before zipfile's size check refused it (shared/PITFALLS.md). A member that cannot be read (encrypted, an
unknown method such as deflate64, a zip inside the zip, larger than its directory says, a bad checksum) gets
its own reason; the rest of the batch is tagged.
"""

from __future__ import annotations

import bz2
import io
import logging
import lzma
import os
import shutil
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)
MAX_FILES = 500  # pictures in one batch
MAX_TOTAL_BYTES = 200 * 1024 * 1024  # their total size, uncompressed
MAX_PICTURE_BYTES = 10 * 1024 * 1024  # one picture, as for a single upload
CHUNK_BYTES = 64 * 1024  # compressed bytes read from the zip at a time
METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "LZMA",
}
OTHER_METHODS = {9: "deflate64", 6: "implode", 1: "shrink", 93: "zstandard", 95: "xz", 98: "PPMd", 99: "AES"}


NESTED_ZIP = "a zip inside the zip is not opened: put the pictures in one zip"


class BatchRejected(ValueError):
    """The batch cannot be tagged; the message says why, for the person who sent it."""


class MemberUnreadable(ValueError):
    """One zip member cannot be read; the message says why (the rest of the zip is read)."""


@dataclass
class Item:
    name: str  # the file's name, or its path inside the zip
    source: object  # a path or an in-memory file
    error: str | None = None  # why this one file is not tagged (the rest of the batch is)


def size_text(n_bytes: int) -> str:
    """A size as a person reads it, rounded so that it never looks within a limit it is over: 10.2 MB."""
    mb = n_bytes / 2**20
    return f"{mb:.1f} MB" if mb < 100 else f"{mb:.0f} MB"


def too_large(n_bytes: int, limit: int = MAX_PICTURE_BYTES) -> str:
    return f"{size_text(n_bytes)}, over the {limit // 2**20} MB limit for one picture"


def limits_text() -> str:
    return (
        f"Up to {MAX_FILES} pictures and {MAX_TOTAL_BYTES // 2**20} MB in all (uncompressed), each up to "
        f"{MAX_PICTURE_BYTES // 2**20} MB: pictures, or one .zip of them."
    )


class _Inflater:
    """One member's decompressor with a bound on each call's output, whatever the method."""

    def __init__(self, method: int):
        self.method, self.eof, self._header = method, False, b""
        if method == zipfile.ZIP_DEFLATED:
            self._d = zlib.decompressobj(-15)
        elif method == zipfile.ZIP_BZIP2:
            self._d = bz2.BZ2Decompressor()
        else:  # stored, or LZMA (its raw stream starts after a small header of its own: zipfile.LZMADecompressor)
            self._d = None

    def feed(self, data: bytes, max_length: int) -> bytes:
        """At most about max_length bytes of output; call again with b"" until it returns nothing."""
        if self.method == zipfile.ZIP_STORED:
            return data
        if self.method == zipfile.ZIP_LZMA and self._d is None:
            self._header += data
            if len(self._header) < 4 or len(self._header) < 4 + struct.unpack("<H", self._header[2:4])[0]:
                return b""
            size = struct.unpack("<H", self._header[2:4])[0]
            self._d = lzma.LZMADecompressor(
                lzma.FORMAT_RAW, filters=[lzma._decode_filter_properties(lzma.FILTER_LZMA1, self._header[4 : 4 + size])]
            )
            data, self._header = self._header[4 + size :], b""
        if self.eof:
            return b""
        if self.method == zipfile.ZIP_DEFLATED:
            out = self._d.decompress(self._d.unconsumed_tail + data, max_length)
        else:
            out = self._d.decompress(data, max_length)
        self.eof = self._d.eof
        return out


def _compressed_chunks(fp, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The member's compressed bytes, CHUNK_BYTES at a time, from just after its local header."""
    fp.seek(info.header_offset)
    header = fp.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise MemberUnreadable("its entry in the zip is damaged")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    fp.seek(info.header_offset + 30 + name_len + extra_len)
    left = info.compress_size
    while left > 0:
        chunk = fp.read(min(CHUNK_BYTES, left))
        if not chunk:
            raise MemberUnreadable("the zip ends before this file does (truncated)")
        left -= len(chunk)
        yield chunk


def read_member(fp, info: zipfile.ZipInfo, limit: int = MAX_PICTURE_BYTES) -> bytes:
    """A member's bytes, never more than min(its directory's size, limit) held in memory, whatever the
    directory says and whatever the method; MemberUnreadable says why a member cannot be had."""
    if info.flag_bits & 0x1:
        raise MemberUnreadable("it is encrypted (password-protected); zip the pictures without a password")
    if info.compress_type not in METHODS:
        method = OTHER_METHODS.get(info.compress_type, f"method {info.compress_type}")
        raise MemberUnreadable(
            f"it is compressed with {method}, which is not supported; zip it with the standard method (deflate)"
        )
    if info.file_size > limit:
        raise MemberUnreadable(too_large(info.file_size, limit))
    budget = info.file_size  # the directory's word, held to: a member that says more is cut off there
    inflater, out = _Inflater(info.compress_type), bytearray()
    for data in _compressed_chunks(fp, info):
        while True:
            piece = inflater.feed(data, budget + 1 - len(out))
            data = b""
            out += piece
            if len(out) > budget:
                raise MemberUnreadable(
                    "it is larger than the zip's directory says (a damaged or hostile zip); it was cut off unread"
                )
            if not piece or inflater.eof:
                break
        if inflater.eof:
            break
    if len(out) != info.file_size:
        raise MemberUnreadable("it is shorter than the zip's directory says (damaged)")
    if zlib.crc32(out) != info.CRC:
        raise MemberUnreadable("its checksum does not match (damaged)")
    return bytes(out)


def _check_directory(name: str, members: list[zipfile.ZipInfo]) -> None:
    if not members:
        raise BatchRejected(f"{name} holds no files.")
    if len(members) > MAX_FILES:
        raise BatchRejected(f"{name} holds {len(members)} files, over the limit of {MAX_FILES}.")
    total = sum(m.file_size for m in members)
    if total > MAX_TOTAL_BYTES:
        raise BatchRejected(
            f"{name} would unpack to {size_text(total)}, over the limit of {MAX_TOTAL_BYTES // 2**20} MB."
        )
    for m in members:
        parts = PurePosixPath(m.filename.replace("\\", "/"))
        if parts.is_absolute() or m.filename.startswith(("/", "\\")) or ".." in parts.parts or ":" in parts.parts[0]:
            raise BatchRejected(f"{name} has a member with an unsafe path ({m.filename!r}); nothing was read.")
        if stat.S_ISLNK(m.external_attr >> 16):
            raise BatchRejected(f"{name} has a link ({m.filename!r}); nothing was read.")


def _zip_items(path: Path) -> list[Item]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise BatchRejected(f"{path.name} is not a readable zip file ({e}).") from None
    with archive, open(path, "rb") as fp:
        members = [
            m
            for m in archive.infolist()
            if not m.is_dir()
            and not PurePosixPath(m.filename).name.startswith(".")
            and not m.filename.startswith("__MACOSX/")
        ]
        _check_directory(path.name, members)
        items = []
        for m in members:
            if PurePosixPath(m.filename).suffix.lower() == ".zip":
                items.append(Item(m.filename, None, NESTED_ZIP))
                continue
            try:
                data = read_member(fp, m)
            except MemberUnreadable as e:
                items.append(Item(m.filename, None, f"could not be read from the zip: {e}"))
                continue
            if data[:4] == b"PK\x03\x04":
                items.append(Item(m.filename, None, NESTED_ZIP))
                continue
            items.append(Item(m.filename, io.BytesIO(data)))
        return items


def batch_items(paths: list[str | Path] | None) -> list[Item]:
    """The pictures of a batch upload, in the order given (a zip's members in its own order). A file that
    cannot be had (too large, unreadable in the zip) gets its reason and the rest are tagged; what makes the whole batch
    impossible (too many files, too much in all, a zip beside pictures) raises BatchRejected naming it."""
    paths = [Path(p) for p in (paths or [])]
    if not paths:
        raise BatchRejected("No files were given: upload pictures, or one .zip of them.")
    zips = [p for p in paths if p.suffix.lower() == ".zip"]
    if zips and len(paths) > 1:
        raise BatchRejected(
            f"Upload either pictures or one .zip, not both ({zips[0].name} came with "
            f"{len(paths) - 1} other file{'s' if len(paths) > 2 else ''})."
        )
    if zips:
        return _zip_items(zips[0])
    if len(paths) > MAX_FILES:
        raise BatchRejected(f"{len(paths)} files were given, over the limit of {MAX_FILES}.")
    total = sum(p.stat().st_size for p in paths)
    if total > MAX_TOTAL_BYTES:
        raise BatchRejected(f"The files add up to {size_text(total)}, over the limit of {MAX_TOTAL_BYTES // 2**20} MB.")
    return [
        Item(p.name, p, too_large(p.stat().st_size) if p.stat().st_size > MAX_PICTURE_BYTES else None) for p in paths
    ]


def keep_pictures(items, folder: Path) -> None:
    """The batch's readable pictures, under their names (a zip member's path included), for an export of its
    checked tags: a hard link to an uploaded file where the file system allows, the bytes of a zip member. The
    first of two pictures of one name is kept (their rows share the name); a picture that cannot be kept is left
    out of the export, never a reason to fail the batch that was tagged."""
    folder.mkdir(parents=True, exist_ok=True)
    for it in items:
        target = folder / it.name
        if target.resolve().parent != folder.resolve() and folder.resolve() not in target.resolve().parents:
            continue  # a member name that climbs out of the folder is not kept
        if target.exists():
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(it.source, (str, os.PathLike)):
                try:
                    os.link(it.source, target)
                except OSError:  # another file system, or links not allowed
                    shutil.copyfile(it.source, target)
            else:
                it.source.seek(0)
                target.write_bytes(it.source.read())
        except OSError as e:
            log.warning("%s not kept for the export: %s", it.name, e)
