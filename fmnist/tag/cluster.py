"""The same tagging on a cluster, when a catalogue outgrows one machine: Dask distributed.

Why Dask rather than Ray Data: tagging is an embarrassingly parallel map over chunks of files, which
`Client.map` does with nothing else; Dask's wheel is small (Ray's is ~80 MB and starts a dashboard and an
object store sized from memory), its LocalCluster runs the same code on one machine for the tests, and
`dask-scheduler` / `dask-worker` (or dask-kubernetes, dask-jobqueue, Coiled) give a real cluster. It is an
optional dependency: the app and the CLI work without it.

Each task tags one chunk of pictures through the fast path (fmnist.tag.core) in a worker process, which loads
the checkpoints once and keeps them. Inputs are local paths (a shared file system) or URIs that fsspec opens
(s3://, gs://, https://...), so a catalogue can be a folder, a list of URIs or a Parquet column of paths.

    python -m fmnist.tag FOLDER --engine dask                          # a local cluster of 2 workers
    python -m fmnist.tag FOLDER --engine dask --address tcp://host:8786  # join a running scheduler
"""

from __future__ import annotations

import io
import os
from pathlib import Path

CHUNK = 32  # pictures per task: enough to batch the model, small enough to spread over workers
CONNECT_TIMEOUT = "30s"  # how long to try a scheduler before saying it cannot be reached

_predictors: dict[str, object] = {}  # per worker process: checkpoints -> Predictor, loaded once


class ClusterUnavailable(RuntimeError):
    """Dask is not installed, or the scheduler cannot be reached."""


def _open(source: str):
    """A local path as it is; a URI read through fsspec into memory."""
    if "://" not in source:
        return source
    import fsspec

    with fsspec.open(source, "rb") as f:
        return io.BytesIO(f.read())


def _tag_chunk(sources: list[str], names: list[str], checkpoints: str, model_name: str | None) -> list[list[str]]:
    """Runs on a worker: the CSV rows of one chunk."""
    from fmnist.photo import ImageRejected
    from fmnist.serving.predict import Predictor
    from fmnist.tag.core import TagRow, entry_problem, single_threaded, tag

    single_threaded()  # one task per worker process and thread: no spinning BLAS threads, one torch thread
    if checkpoints not in _predictors:
        _predictors[checkpoints] = Predictor.from_source(checkpoints)
    opened, rows = [], {}
    for i, s in enumerate(sources):
        problem = entry_problem(Path(s)) if "://" not in s else None
        if problem:  # a dangling link, a loop: as the single-machine path says it
            rows[i] = TagRow(names[i], [], {}, [], problem)
            continue
        try:
            opened.append((i, _open(s)))
        except Exception as e:  # noqa: BLE001 - an unreachable URI: its row says so, as an unreadable file's does
            rows[i] = TagRow(names[i], [], {}, [], str(ImageRejected(f"could not be read: {e}")))
    tagged = tag(_predictors[checkpoints], [o for _, o in opened], [names[i] for i, _ in opened], model_name, workers=0)
    rows.update({i: r for (i, _), r in zip(opened, tagged)})
    return [rows[i].csv_row() for i in range(len(sources))]


def tag_sources(
    sources: list[str],
    names: list[str],
    out_csv: Path,
    checkpoints: str,
    model_name: str | None = None,
    address: str | None = None,
    n_workers: int = 2,
) -> tuple[int, int]:
    """Tag sources on a Dask cluster (the one at address, or a local one of n_workers processes) into
    out_csv, rows in the order of sources; returns (tagged, could not be read)."""
    from fmnist.tag.core import write_csv

    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ClusterUnavailable("--engine dask needs Dask: pip install 'dask[distributed]'") from None
    environ, cluster = dict(os.environ), None
    try:
        if address is None:
            # no dashboard (it would need bokeh and a port), one thread per worker process
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
        try:
            client = Client(cluster if cluster is not None else address, timeout=CONNECT_TIMEOUT)
        except OSError as e:
            raise ClusterUnavailable(f"cannot reach the Dask scheduler at {address}: {e}") from None
        with client:
            chunks = [(sources[i : i + CHUNK], names[i : i + CHUNK]) for i in range(0, len(sources), CHUNK)]
            futures = client.map(
                _tag_chunk,
                [c[0] for c in chunks],
                [c[1] for c in chunks],
                checkpoints=str(checkpoints),
                model_name=model_name,
                pure=False,
            )
            results = client.gather(futures)
    finally:
        if cluster is not None:
            cluster.close()
        # a local cluster's nannies write OMP_NUM_THREADS=1 (and MKL's, OpenBLAS's, MALLOC_TRIM_THRESHOLD_) into
        # this process's environment as they start their workers (a cluster that fails to start too), and leave
        # it there: every process started from here afterwards would run torch on one thread (the README's quick
        # run took 65 s instead of 30 in the suite)
        os.environ.clear()
        os.environ.update(environ)
    rows = [row for chunk in results for row in chunk]
    write_csv(rows, out_csv)
    unread = sum(r[7].startswith("error: ") for r in rows)  # the notice column of a row that could not be read
    return len(rows) - unread, unread


def tag_on_dask(
    folder: Path,
    out_csv: Path,
    checkpoints: str,
    model_name: str | None = None,
    address: str | None = None,
    n_workers: int = 2,
) -> tuple[int, int]:
    """The CLI's --engine dask: every picture in folder, by name, as the single-machine path writes them.
    Paths are made absolute, so workers on other machines need the folder at the same path (a shared file
    system); for object storage, pass URIs to tag_sources instead."""
    from fmnist.tag.core import catalogue_files

    files = catalogue_files(Path(folder))
    local = Path(checkpoints)
    checkpoints = str(local.resolve()) if local.exists() else checkpoints  # a folder, or a Hub repo id
    return tag_sources(
        [str(p.absolute()) for p in files],
        [p.name for p in files],
        out_csv,
        checkpoints,
        model_name,
        address,
        n_workers,
    )
