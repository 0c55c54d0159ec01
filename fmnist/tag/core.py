"""Tag a catalogue: many pictures, one fast path, shared by the app's batch tab, the CLI and the cluster run.

Tagging needs what a shop's catalogue needs: the top-3 classes with calibrated probabilities, the notice
rules (the picture rules and the not-a-garment detector) and the picture's hints (a garment cut by its edge).
It skips what only a person looking at one answer needs: the heat map, the overlay, the outline. Pictures are
decoded and segmented in worker processes (the expensive part: ~0.1 s each), and the model runs on batches of
their 28x28 images. The answers are the ones `Predictor.predict` gives for each picture alone (a test checks
top-1, probabilities to 1e-5, rules and hints).

    rows = tag(predictor, paths, workers=2)          # -> list of TagRow, in the order of paths
    write_csv(rows, "tags.csv")
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fmnist import CLASS_NAMES
from fmnist.notice.rules import picture_hints
from fmnist.photo import ImageRejected, Preprocessed, preprocess
from fmnist.serving.predict import detector_scores

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic", ".heif", ".avif"}
# label: empty, for a person to fill where they checked a picture (a class name, or skip): fmnist.dataset
CSV_HEADER = ["file", "top1", "p1", "top2", "p2", "top3", "p3", "notice", "hint", "label"]
BATCH = 64  # 28x28 images per forward pass: large enough to amortise, small enough to show progress
# below this many pictures, tagging stays in this process: starting workers costs more than they save
# (the crossover in benchmarks/tagging.py, README "Catalogue tagging")
INLINE_BELOW = 16
THUMB = 96  # the batch tab's thumbnails, made in the worker from the picture it already decoded
IN_FLIGHT_PER_WORKER = 4  # pictures sent ahead to each worker: it never waits, and a dead one holds few
log = logging.getLogger(__name__)


@dataclass
class TagRow:
    file: str  # the name shown in the CSV (the path as given, or a name inside a zip)
    top3: list[tuple[str, float]]  # (class, calibrated probability), empty when the file could not be read
    probabilities: dict[str, float]
    rules: list[str]  # the notice rules that fired
    error: str | None = None  # why the file could not be read
    hints: list[str] = field(default_factory=list)  # how the picture could be taken better (picture_hints)
    thumbnail: np.ndarray | None = field(default=None, repr=False)  # (h, w, 3) uint8, THUMB px on its long side

    def csv_row(self) -> list[str]:
        if self.error is not None:
            return [self.file, "", "", "", "", "", "", f"error: {self.error}", "", ""]
        return (
            [self.file]
            + [v for c, p in self.top3 for v in (c, f"{p:.4f}")]
            + ["; ".join(self.rules), "; ".join(self.hints), ""]
        )


def _prepare(source) -> tuple[Preprocessed | None, str | None]:
    """Decode and segment one picture (in a worker process): the slim result, or the reason it failed. The
    slim result keeps a thumbnail of the picture in place of the working-size view."""
    from PIL import Image

    try:
        pre = preprocess(source)
        thumb = Image.fromarray(pre.view)
        thumb.thumbnail((THUMB, THUMB))
    except ImageRejected as e:
        return None, str(e)
    except Exception as e:  # noqa: BLE001 - preprocess turns a file's own errors into ImageRejected; this is the rest
        return None, f"could not be processed ({type(e).__name__})"
    return dataclasses.replace(pre, view=np.asarray(thumb), mask=None), None  # what the model and rules need


_limits = None  # per worker process: the thread-pool limit that single_threaded set


def single_threaded() -> None:
    """Each worker uses one core. OpenBLAS (numpy's small matrix products in the backdrop fit) otherwise
    starts a thread per core that spins while it waits, and two workers' spinning threads take each other's
    cores: measured here, 2 workers were no faster than 1 until this."""
    global _limits
    from threadpoolctl import threadpool_limits

    _limits = threadpool_limits(1)
    torch.set_num_threads(1)


def _worker_start(parent_pid: int) -> None:
    """A worker's initializer: one core, and an exit when the process that started it is gone. An app server
    stopped by SIGTERM or SIGKILL has no time to shut its pool down, and a forked worker waits forever on a
    queue whose other end it holds itself: found as orphans the size of the server (800 MB, holding a copy of
    its listening socket) an hour after the tests had stopped it."""
    single_threaded()

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


PARENT_CHECK_S = 1.0  # how often a worker looks for its parent: an orphan lives at most this long
_pools: dict[int, ProcessPoolExecutor] = {}  # started once per process and kept: the app tags batch after batch


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of single-threaded worker processes, started once and reused. Preprocessing's imports are made
    before the fork, so the workers start with them (and with nothing to load: the models stay here)."""
    if workers not in _pools:
        from fmnist.photo import warm_up

        warm_up()
        _pools[workers] = ProcessPoolExecutor(workers, initializer=_worker_start, initargs=(os.getpid(),))
    return _pools[workers]


def _discard_pool(workers: int) -> None:
    """Forget a broken pool (a worker died): the next worker_pool call starts a new one."""
    pool = _pools.pop(workers, None)
    if pool is not None:
        pool.shutdown(wait=False, cancel_futures=True)


WORKER_DIED = "the worker process reading it stopped twice (the picture may need more memory than the server has)"


def _pooled(sources: Sequence, workers: int) -> Iterator[tuple[Preprocessed | None, str | None]]:
    """Each source's preprocessing in the worker pool, in order, a few pictures per worker in flight.

    A pool breaks for good when one of its workers dies (killed by the out-of-memory killer, or by hand), and
    every picture it held fails with it. Then the pool is replaced and those pictures are tried again one at
    a time, so that one that breaks the new pool too is known: it gets WORKER_DIED as its reason, and the rest
    of the batch goes on."""
    inflight: deque[tuple[int, Future]] = deque()
    retry: deque[int] = deque()  # pictures held by a pool that broke: tried again alone
    tried_alone: set[int] = set()
    results: dict[int, tuple[Preprocessed | None, str | None]] = {}
    fresh = shown = 0  # the next picture to send for the first time; the next one to yield
    while shown < len(sources):
        try:  # a pool breaks for good: submitting to it raises too, not only waiting on it
            pool = worker_pool(workers)
            if retry:
                if not inflight:
                    inflight.append((retry[0], pool.submit(_prepare, sources[retry[0]])))
                    tried_alone.add(retry.popleft())
            else:
                while fresh < len(sources) and len(inflight) < IN_FLIGHT_PER_WORKER * workers:
                    inflight.append((fresh, pool.submit(_prepare, sources[fresh])))
                    fresh += 1
            i, future = inflight[0]
            try:
                results[i] = future.result()
            except BrokenProcessPool:
                raise
            except Exception as e:  # noqa: BLE001 - a picture whose result could not come back, say
                results[i] = (None, f"could not be processed ({type(e).__name__})")
            inflight.popleft()
        except BrokenProcessPool:
            log.warning("a tagging worker died; starting a new pool and trying its pictures again")
            _discard_pool(workers)
            held = list(inflight)
            inflight.clear()
            for j, f in held:
                if f.done() and not f.cancelled() and f.exception() is None:
                    results[j] = f.result()  # finished before the pool broke
                elif j in tried_alone:
                    results[j] = (None, WORKER_DIED)
                else:
                    retry.append(j)
            retry = deque(sorted(retry))
        while shown in results:
            yield results.pop(shown)
            shown += 1


def prepared(
    sources: Sequence, workers: int, inline_below: int = INLINE_BELOW
) -> Iterator[tuple[Preprocessed | None, str | None]]:
    """Each source's preprocessing, in order; with workers >= 1 (and at least inline_below sources) in that
    many single-threaded processes, while this one runs single-threaded too, so that no spinning thread of
    its own takes a worker's core."""
    if workers <= 0 or len(sources) < inline_below:
        yield from map(_prepare, sources)
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield from _pooled(sources, workers)
    finally:
        torch.set_num_threads(threads)


@torch.inference_mode()
def classify_batch(
    predictor, pres: list[Preprocessed], model_name: str | None = None
) -> list[tuple[np.ndarray, list[str]]]:
    """(calibrated probabilities, notice rules) for a batch of preprocessed pictures: what
    Predictor.predict computes, without the heat map."""
    entry = predictor.models[model_name or predictor.default]
    dev = next(entry.model.parameters()).device
    x = torch.tensor(np.stack([p.pixels for p in pres]), dtype=torch.float32, device=dev).div(255.0)[:, None]
    feats = entry.model.penultimate(x)
    logits = entry.model.classify_features(feats)
    probs = torch.softmax(logits.float() / entry.config.get("temperature", 1.0), dim=1).cpu().numpy()
    maha, things, digits = detector_scores(entry, feats)
    return [
        (p, predictor.notice_rules(entry, pre, m, t, d)) for p, pre, m, t, d in zip(probs, pres, maha, things, digits)
    ]


def _row(name: str, probs: np.ndarray, rules: list[str], pre: Preprocessed) -> TagRow:
    order = np.argsort(-probs)
    return TagRow(
        name,
        [(CLASS_NAMES[i], float(probs[i])) for i in order[:3]],
        {c: float(p) for c, p in zip(CLASS_NAMES, probs)},
        rules,
        thumbnail=pre.view,
        hints=picture_hints(pre),
    )


def tag_rows(
    predictor,
    sources: Sequence,
    names: Sequence[str] | None = None,
    model_name: str | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
    inline_below: int = INLINE_BELOW,
) -> Iterator[TagRow]:
    """Tag every source (path, file object or PIL image), yielding the rows in order as they are done, so
    that a caller can keep them as it goes; unreadable ones get their reason. Fewer than inline_below
    sources are tagged in this process whatever `workers` says. progress(done, total) is called as it goes."""
    names = [str(s) for s in sources] if names is None else list(names)
    rows: dict[int, TagRow] = {}
    pending: list[tuple[int, Preprocessed]] = []
    given = 0  # rows yielded so far

    def flush():
        for (i, pre), (probs, rules) in zip(pending, classify_batch(predictor, [p for _, p in pending], model_name)):
            rows[i] = _row(names[i], probs, rules, pre)
        pending.clear()

    done = 0
    for i, (pre, error) in enumerate(prepared(sources, workers, inline_below)):
        if error is not None:
            rows[i] = TagRow(names[i], [], {}, [], error)
        else:
            pending.append((i, pre))
        done += 1
        if pending and (len(pending) >= BATCH or done == len(sources)):
            flush()
        if progress is not None and (done % 16 == 0 or done == len(sources)):
            progress(done, len(sources))
        while given in rows:
            yield rows.pop(given)
            given += 1


def tag(predictor, sources: Sequence, *args, **kwargs) -> list[TagRow]:
    """tag_rows(predictor, sources, ...) as a list, with the same arguments."""
    return list(tag_rows(predictor, sources, *args, **kwargs))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet reads as the start of a formula


def csv_safe(cell: str) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula (a file named `=1+1.png`) gets a
    leading apostrophe, as OWASP's advice on CSV injection and the spreadsheets themselves expect."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def partial_path(path: str | os.PathLike) -> Path:
    """Where write_csv keeps the rows written so far; left behind, with them, if the run is stopped."""
    return Path(path).with_name(Path(path).name + ".partial")


def write_csv(rows: Iterable[TagRow | list[str]], path: str | os.PathLike) -> Path:
    """The tags (TagRows, or their CSV rows) as CSV (CSV_HEADER), each row written as it comes (rows are
    flushed, so that a stopped run keeps them in path.partial) and the file renamed into place at the end:
    never half a file at path."""
    path = Path(path)
    tmp = partial_path(path)
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        for r in rows:
            writer.writerow([csv_safe(c) for c in (r.csv_row() if isinstance(r, TagRow) else r)])
            f.flush()
    os.replace(tmp, path)
    return path


def catalogue_files(folder: Path) -> list[Path]:
    """Every entry of a folder that looks like a picture (an image suffix), by name: files, and also links
    whose target is missing or loops and anything else that will not open, so that each gets a row."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def entry_problem(path: Path) -> str | None:
    """Why a catalogue entry cannot be read as a file, before any decoder sees it; None when it can."""
    try:
        if path.is_symlink() and not path.exists():
            path.stat()  # raises: ELOOP for a loop, ENOENT for a missing target
        if path.is_dir():
            return "a folder, not a picture"
        if not path.is_file():
            return "not a regular file"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "a link that loops back on itself"
        if e.errno == errno.ENOENT:
            return "a link to a file that does not exist"
        return f"could not be read ({e.strerror})"
    return None
