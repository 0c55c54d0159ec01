"""Catalogue tagging: the fast path (fmnist.tag.core) gives what Predictor.predict gives, on every kind of file,
and the Dask engine (fmnist.tag.cluster) writes the same CSV as one machine."""

import csv
import os
import sys

import pytest
from PIL import Image

from conftest import ROOT, needs_real_data, real_data_dir
from fmnist.serving.predict import Predictor
from fmnist.tag.cli import main as tag_main

CHECKPOINTS = ROOT / "checkpoints"
pytestmark = pytest.mark.skipif(not any(CHECKPOINTS.glob("*/model.safetensors")), reason="no bundled checkpoints")


@pytest.fixture(scope="module")
def predictor():
    return Predictor.from_source(CHECKPOINTS)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """A mixed folder: data-set images, phone-like renders (JPEG, one HEIC), a garment cut by the picture's
    edge, non-garments and broken files."""
    from fmnist.data import load_raw
    from fmnist.photo.render import non_garments, render_item
    from fmnist.photo.render.cut import cut_photo

    folder = tmp_path_factory.mktemp("catalogue")
    raw = load_raw(real_data_dir(), allow_download=False)
    for i in range(4):
        Image.fromarray(raw.test_images[i]).save(folder / f"dataset_{i}.png")
    for k, (renderer, level) in enumerate(
        [("scenes", "everyday"), ("tint", "clean"), ("opaque", "everyday"), ("pattern", "textured")]
    ):
        picture = render_item(renderer, level, raw.test_images[10 + k], 0, 10 + k)
        picture.save(folder / f"photo_{renderer}.jpg", quality=90, exif=picture.getexif())
    picture.convert("RGB").save(folder / "photo_phone.heic", quality=90)
    cut_photo(raw.test_images[2], 0.2, 3).save(folder / "photo_cut.jpg", quality=90)  # a trouser, a fifth cut off
    for kind, picture in non_garments(seed=0, per_kind=1)[::6]:
        picture.convert("RGB").save(folder / f"other_{kind.replace(':', '_')}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (folder / "text.jpg").write_text("a text file renamed .jpg")
    return folder


@needs_real_data
@pytest.mark.parametrize("workers", [0, 2])
def test_the_fast_path_gives_what_predict_gives_on_every_file(predictor, catalogue, workers):
    from fmnist.photo import ImageRejected
    from fmnist.tag.core import catalogue_files, tag

    files = catalogue_files(catalogue)
    assert len(files) >= 14
    rows = tag(predictor, files, [p.name for p in files], workers=workers, inline_below=0)  # workers as asked
    assert [r.file for r in rows] == [p.name for p in files]
    for path, row in zip(files, rows):
        try:
            single = predictor.predict(path)
        except ImageRejected as e:
            assert row.error == str(e) and row.top3 == [], path.name
            continue
        assert row.error is None and row.top3[0][0] == single.top3[0][0], path.name
        assert max(abs(row.probabilities[c] - p) for c, p in single.probabilities.items()) < 1e-5, path.name
        assert row.rules == single.rules and row.hints == single.hints, path.name
    assert {r.file for r in rows if r.error} == {"broken.jpg", "text.jpg"}
    assert [r.file for r in rows if r.hints] == ["photo_cut.jpg"]
    assert any(r.rules for r in rows) and any(not r.rules for r in rows if not r.error)


@needs_real_data
def test_a_small_folder_stays_in_this_process_and_a_large_one_reuses_its_workers(predictor, catalogue):
    from fmnist.tag import core

    files = core.catalogue_files(catalogue)[:4]
    core._pools.clear()
    core.tag(predictor, files, workers=2, inline_below=5)
    assert core._pools == {}  # 4 pictures: no worker was started
    core.tag(predictor, files, workers=2, inline_below=4)
    pool = core._pools[2]
    core.tag(predictor, files, workers=2, inline_below=4)
    assert core._pools[2] is pool  # started once, then reused
    pids = set(pool._processes)
    core.tag(predictor, files * 3, workers=2, inline_below=4)
    assert set(pool._processes) == pids


@needs_real_data
def test_dask_on_a_local_cluster_writes_the_single_machine_csv(catalogue, tmp_path):
    pytest.importorskip("dask.distributed")
    here, there = tmp_path / "here.csv", tmp_path / "dask.csv"
    assert tag_main([str(catalogue), "--out", str(here), "--checkpoints", str(CHECKPOINTS), "--workers", "1"]) == 0
    environ = dict(os.environ)
    assert (
        tag_main(
            [
                str(catalogue),
                "--out",
                str(there),
                "--checkpoints",
                str(CHECKPOINTS),
                "--engine",
                "dask",
                "--cluster-workers",
                "2",
            ]
        )
        == 0
    )
    ours, theirs = list(csv.reader(here.open())), list(csv.reader(there.open()))
    assert len(ours) > 10 and ours == theirs
    # the local cluster's nannies set OMP_NUM_THREADS=1 and more for their workers: not for this process
    assert dict(os.environ) == environ


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, capsys, monkeypatch):
    pytest.importorskip("dask.distributed")
    from fmnist.tag import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "3s")  # the same error, without the default's 30 s of tries
    (tmp_path / "a.png").write_bytes(b"")
    code = tag_main(
        [
            str(tmp_path),
            "--out",
            str(tmp_path / "t.csv"),
            "--checkpoints",
            str(CHECKPOINTS),
            "--engine",
            "dask",
            "--address",
            "tcp://127.0.0.1:9",
        ]
    )
    assert code == 2 and "Dask scheduler" in capsys.readouterr().err


def _alive(pid: int) -> bool:
    """Whether a process is running (a zombie, dead but not yet reaped, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_exit_when_the_process_that_started_them_is_killed(tmp_path):
    """An app server stopped by a signal cannot shut its tagging pool down; its forked workers must not outlive
    it (they did: copies of the server, holding its listening socket, an hour after the tests had stopped it)."""
    import subprocess
    import time

    code = (
        "import os, signal\n"
        "from fmnist.tag.core import worker_pool\n"
        "pool = worker_pool(2)\n"
        "print(*sorted({pool.submit(os.getpid).result() for _ in range(8)}), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    # to a file, not a pipe: an orphaned worker would hold a pipe open, and reading it would wait for the worker
    with open(tmp_path / "out", "w") as out:
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=300)
    printed = (tmp_path / "out").read_text()
    workers = [int(p) for p in printed.split()[-2:] if p.isdigit()]
    assert workers, printed[-2000:]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(map(_alive, workers)):
        time.sleep(0.2)
    assert not any(map(_alive, workers)), [p for p in workers if _alive(p)]
