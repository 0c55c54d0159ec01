"""Hostile files for the tests: zips that lie in their directory, PNGs with oversized chunks, and a fixed-seed
fuzzer of mutated pictures in every format the app takes."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

FUZZ_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "TIFF": ".tif", "WEBP": ".webp", "HEIF": ".heic"}
METHODS = {
    "stored": zipfile.ZIP_STORED,
    "deflate": zipfile.ZIP_DEFLATED,
    "bzip2": zipfile.ZIP_BZIP2,
    "lzma": zipfile.ZIP_LZMA,
}


def zip_of(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    """A zip of the given members (name -> bytes), written with one method."""
    with zipfile.ZipFile(path, "w", method) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def lying_zip(path: Path, method: int, mb: int, claimed: int = 1000) -> Path:
    """A zip of one member of mb MiB of zeros whose directory (central and local) claims `claimed` bytes: the
    issue's reproduction, for any method."""
    with zipfile.ZipFile(path, "w", method) as z, z.open("a.png", "w", force_zip64=mb >= 4096) as f:
        chunk = bytes(1 << 20)
        for _ in range(mb):
            f.write(chunk)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, data.rfind(b"PK\1\2") + 24, claimed)  # the central directory's size
    struct.pack_into("<I", data, 22, claimed)  # the local header's
    path.write_bytes(bytes(data))
    return path


def with_flags(path: Path, member: str, *, encrypted: bool = False, method: int | None = None) -> None:
    """Mark one member of a zip as encrypted, or as compressed with another method (deflate64 is 9), in both
    its local header and the central directory, as such zips are."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(member)
    local = info.header_offset
    central = data.find(b"PK\1\2")
    while central != -1:  # find the central entry that names this member
        name_len = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + name_len] == member.encode():
            break
        central = data.find(b"PK\1\2", central + 4)
    for header, flag_at, method_at in ((local, 6, 8), (central, 8, 10)):
        if encrypted:
            struct.pack_into("<H", data, header + flag_at, struct.unpack_from("<H", data, header + flag_at)[0] | 1)
        if method is not None:
            struct.pack_into("<H", data, header + method_at, method)
    path.write_bytes(bytes(data))


def png_with_ztxt(size: int = 64, text_bytes: int = 2 << 20) -> bytes:
    """A 64x64 PNG with a zTXt chunk that inflates to text_bytes, inserted after IHDR (the issue's case)."""
    buf = io.BytesIO()
    Image.new("L", (size, size), 200).save(buf, "PNG")
    png = buf.getvalue()
    body = b"Comment\0\0" + zlib.compress(b"A" * text_bytes)
    chunk = struct.pack(">I", len(body)) + b"zTXt" + body + struct.pack(">I", zlib.crc32(b"zTXt" + body))
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def png_with_iccp(size: int = 64, profile_bytes: int = 8 << 20) -> bytes:
    """A PNG whose iCCP colour profile inflates to profile_bytes."""
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (200, 100, 50)).save(buf, "PNG")
    png = buf.getvalue()
    body = b"icc\0\0" + zlib.compress(b"\0" * profile_bytes)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body + struct.pack(">I", zlib.crc32(b"iCCP" + body))
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def _garment(rng: np.random.Generator) -> Image.Image:
    """A garment-like picture: a dark shirt shape on a light backdrop, 160x160."""
    img = np.full((160, 160, 3), 235, np.uint8)
    top, left = rng.integers(20, 40, 2)
    img[top : top + 100, left + 20 : left + 80] = rng.integers(20, 120, 3)
    img[top : top + 30, left : left + 100] = rng.integers(20, 120, 3)
    return Image.fromarray(img)


def _mutate(data: bytes, rng: np.random.Generator, kind: str) -> bytes:
    data = bytearray(data)
    if kind == "flip":  # a few bit flips past the first bytes (the signature), where the decoder's state lives
        for _ in range(int(rng.integers(1, 40))):
            at = int(rng.integers(min(8, len(data) - 1), len(data)))
            data[at] ^= 1 << int(rng.integers(0, 8))
    elif kind == "truncate":
        data = data[: int(rng.integers(8, max(9, len(data) - 1)))]
    elif kind == "bytes":  # a run of random bytes over the header and tables
        at = int(rng.integers(4, min(200, len(data) - 16)))
        data[at : at + 16] = rng.integers(0, 256, 16, dtype=np.uint8).tobytes()
    elif kind == "tag":  # one TIFF directory entry's type, count or value made arbitrary (a damaged TIFF's tags)
        ifd = struct.unpack_from("<I", data, 4)[0]
        entry = ifd + 2 + 12 * int(rng.integers(0, struct.unpack_from("<H", data, ifd)[0]))
        field = int(rng.integers(0, 3))
        if field == 0:
            struct.pack_into("<H", data, entry + 2, int(rng.integers(0, 20)))
        else:
            struct.pack_into("<I", data, entry + 4 * field, int(rng.integers(0, 1 << 31)))
    elif kind == "grow":  # a length field made huge: the first 4 bytes that read as a small big-endian int
        for at in range(8, min(len(data) - 4, 400)):
            if 0 < struct.unpack_from(">I", data, at)[0] < 4096:
                struct.pack_into(">I", data, at, 0x7FFFFFF0)
                break
    return bytes(data)


def fuzz_files(folder: Path, seed: int = 0, per_format: int = 12) -> list[Path]:
    """Fixed-seed mutated pictures: for each format, per_format mutations of one garment picture (bit flips,
    truncations, random bytes, a length field made huge; for TIFF five times as many, most of them damaged
    directory entries), plus PNGs with oversized text and profile chunks.
    Returns their paths (a HEIC is made only where pillow-heif is installed)."""
    import fmnist.photo  # noqa: F401  (registers pillow-heif's HEIF opener and writer)

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt, suffix in FUZZ_FORMATS.items():
        kinds = ("flip", "truncate", "bytes", "grow") + (("tag",) * 12 if fmt == "TIFF" else ())
        buf = io.BytesIO()
        try:
            _garment(rng).save(buf, fmt)
        except (KeyError, OSError):  # no HEIF writer without pillow-heif
            continue
        for k in range(per_format * (5 if fmt == "TIFF" else 1)):
            kind = kinds[k % len(kinds)]
            path = folder / f"fuzz_{fmt.lower()}_{k:02d}_{kind}{suffix}"
            path.write_bytes(_mutate(buf.getvalue(), rng, kind))
            paths.append(path)
    for name, data in (("ztxt_2mb.png", png_with_ztxt()), ("iccp_8mb.png", png_with_iccp())):
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths
