"""Tag a folder of garment pictures into a CSV (file, top-3 classes with probabilities, notice, hint) through the
fast tagging path (fmnist.tag.core), on this machine or on a Dask cluster (fmnist.tag.cluster).

    python -m fmnist.tag FOLDER [--out tags.csv] [--model NAME] [--checkpoints checkpoints/] [--workers N]
    python -m fmnist.tag FOLDER --engine dask [--address tcp://scheduler:8786]

Every entry of the folder with a picture's suffix gets a row, in name order: its tags, or why it could not be
read (a damaged file, a link to nothing). Rows are written as they are done; a run that is stopped leaves
them in OUT.partial. Exit codes: 0 when at least one picture was tagged; 1 when none could be (or, with
--strict, when any could not); 2 for a usage error (a bad --out, no such folder) or checkpoints that cannot
be loaded.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from tqdm.auto import tqdm

from fmnist.checkpoints import hub
from fmnist.serving.predict import Predictor
from fmnist.tag.core import TagRow, catalogue_files, entry_problem, partial_path, tag_rows, write_csv

EXIT_OK, EXIT_UNTAGGED, EXIT_USAGE = 0, 1, 2


def out_problem(out: Path, files: list[Path]) -> str | None:
    """Why --out cannot take the CSV, found before any work; None when it can."""
    if out.is_dir():
        return f"--out {out} is a folder: give a file path, such as {out / 'tags.csv'}"
    if not out.parent.is_dir():
        return f"--out {out}: the folder {out.parent} does not exist"
    target = out.resolve()
    if any(target == p.resolve() for p in files if not p.is_symlink() or p.exists()):
        return f"--out {out} is one of the pictures being tagged: give another file path"
    partial = partial_path(out)
    try:  # writable, as the run will write it
        with open(partial, "a"):
            pass
        partial.unlink()
    except OSError as e:
        return f"--out {out} cannot be written ({e.strerror})"
    return None


def tag_folder(
    predictor: Predictor, folder: Path, out_csv: Path, model_name: str | None = None, workers: int = 2
) -> tuple[int, int]:
    """Write one CSV row per picture entry of folder (sorted by name) through the fast tagging path
    (fmnist.tag.core), each row as it is done; entries that cannot be read get their reason as notice.
    Returns (tagged, could not be read)."""
    files = catalogue_files(folder)
    problems = {p: entry_problem(p) for p in files}
    readable = [p for p in files if problems[p] is None]
    counts = [0, 0]

    def rows():
        with tqdm(total=len(readable), desc="tagging", unit="image") as bar:
            tagged = tag_rows(
                predictor,
                readable,
                [p.name for p in readable],
                model_name,
                workers,
                progress=lambda done, total: bar.update(done - bar.n),
            )
            for p in files:
                row = TagRow(p.name, [], {}, [], problems[p]) if problems[p] else next(tagged)
                counts[row.error is not None] += 1
                yield row

    write_csv(rows(), out_csv)
    return counts[0], counts[1]


def _summary(tagged: int, unread: int, out: Path, where: str = "") -> str:
    return f"tagged {tagged}, {unread} could not be read, into {out}{where}" + (
        " (see the notice column)" if unread else ""
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Tag a folder of garment pictures into a CSV.",
        epilog="exit codes: 0 at least one picture tagged; 1 none could be tagged (or, with --strict, any could "
        "not); 2 a usage error or checkpoints that cannot be loaded",
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path, default=Path("tags.csv"))
    parser.add_argument("--model", help="default: the most accurate model")
    parser.add_argument("--checkpoints", default="checkpoints", help="a checkpoints folder or a Hub repo id")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="processes that decode and segment (default: one per core; 0: none, all in this one)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when any picture could not be read")
    parser.add_argument(
        "--engine",
        choices=("local", "dask"),
        default="local",
        help="local: this machine; dask: a Dask cluster (fmnist.tag.cluster; pip install 'dask[distributed]')",
    )
    parser.add_argument("--address", help="with --engine dask: the scheduler to join (default: a local cluster)")
    parser.add_argument(
        "--cluster-workers",
        type=int,
        default=2,
        help="with --engine dask and no --address: workers of the local cluster",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    if args.workers < 0:
        parser.error("--workers must be 0 or more")
    files = catalogue_files(args.folder)
    problem = out_problem(args.out, files)
    if problem:
        parser.error(problem)
    if args.engine == "dask":
        from fmnist.tag.cluster import ClusterUnavailable, tag_on_dask

        try:
            tagged, unread = tag_on_dask(
                args.folder, args.out, args.checkpoints, args.model, args.address, args.cluster_workers
            )
        except (ClusterUnavailable, hub.CheckpointError) as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USAGE
        print(_summary(tagged, unread, args.out, " on Dask"))
        return _exit_code(tagged, unread, args.strict)
    try:  # only the model that tags: loading all of them was an eighth of a 120-picture run
        predictor = Predictor.from_source(args.checkpoints, only=args.model or "default")
    except hub.CheckpointError as e:
        if args.model and "has no model" in str(e):
            parser.error(f"--model {args.model}: {e}")
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    try:
        tagged, unread = tag_folder(predictor, args.folder, args.out, args.model, args.workers)
    except KeyboardInterrupt:
        print(f"stopped: the rows done so far are in {partial_path(args.out)}", file=sys.stderr)
        return 130
    print(_summary(tagged, unread, args.out))
    return _exit_code(tagged, unread, args.strict)


def _exit_code(tagged: int, unread: int, strict: bool) -> int:
    if tagged == 0:
        print("error: no picture could be tagged", file=sys.stderr)
        return EXIT_UNTAGGED
    return EXIT_UNTAGGED if strict and unread else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
