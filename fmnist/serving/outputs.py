"""The app's answer files: each response's pictures, CSVs and exports in files of their own, pruned after a while."""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path

OUTPUT_MAX_AGE_S = 600  # a response's files (and a tagged batch's pictures, for its export) are kept this long
PRUNE_EVERY_S = 10  # how often old answer files are looked for


class OutputFiles:
    """Each response's images are written to files of their own.

    Gradio caches returned PIL images under a hash of their bytes and writes that file in place, so
    identical answers to concurrent requests (many people clicking one example) can be served half
    written (shared/PITFALLS.md). A file path is instead copied into the cache under a temporary name
    and renamed, and a unique file per response shares nothing with other requests."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="fmnist-app-"))
        self._pruned = 0.0

    def save(self, image, stem: str) -> str:
        if time.time() - self._pruned > PRUNE_EVERY_S:  # a scan of the folder, not one per file written
            self._pruned = time.time()
            self._prune()
        path = self.dir / f"{stem}-{uuid.uuid4().hex}.png"
        image.save(path, compress_level=1)  # lossless still; the default level 6 cost more than it saved here
        return str(path)

    def _prune(self) -> None:
        cutoff = time.time() - OUTPUT_MAX_AGE_S
        for p in self.dir.iterdir():  # images and CSVs
            try:
                if p.stat().st_mtime < cutoff:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()  # a batch's pictures are a folder
            except FileNotFoundError:  # another request pruned it first
                pass
