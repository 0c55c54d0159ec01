"""Tag a folder of garment pictures into a CSV (file, top-3 classes with probabilities, notice, hint) through the
fast tagging path (fmnist.tagging), on this machine or on a Dask cluster (fmnist.cluster).

    python -m fmnist.tag FOLDER [--out tags.csv] [--model NAME] [--checkpoints checkpoints/] [--workers N]
    python -m fmnist.tag FOLDER --engine dask [--address tcp://scheduler:8786]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from tqdm.auto import tqdm

from . import hub
from .predict import Predictor
from .tagging import catalogue_files, tag, write_csv


def tag_folder(predictor: Predictor, folder: Path, out_csv: Path, model_name: str | None = None,
               workers: int = 2) -> int:
    """Write one CSV row per image in folder (sorted by name) through the fast tagging path
    (fmnist.tagging); unreadable files get their reason as notice."""
    files = catalogue_files(folder)
    with tqdm(total=len(files), desc="tagging", unit="image") as bar:
        rows = tag(predictor, files, [p.name for p in files], model_name, workers,
                   progress=lambda done, total: bar.update(done - bar.n))
    write_csv(rows, out_csv)
    return len(files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Tag a folder of garment pictures into a CSV.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--out", type=Path, default=Path("tags.csv"))
    parser.add_argument("--model", help="default: the most accurate model")
    parser.add_argument("--checkpoints", default="checkpoints", help="a checkpoints folder or a Hub repo id")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes that decode and segment (default: one per core; 0: none, all in this one)")
    parser.add_argument("--engine", choices=("local", "dask"), default="local",
                        help="local: this machine; dask: a Dask cluster (fmnist.cluster; pip install 'dask[distributed]')")
    parser.add_argument("--address", help="with --engine dask: the scheduler to join (default: a local cluster)")
    parser.add_argument("--cluster-workers", type=int, default=2, help="with --engine dask and no --address: "
                                                                       "workers of the local cluster")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder")
    if args.workers < 0:
        parser.error("--workers must be 0 or more")
    if args.engine == "dask":
        from .cluster import ClusterUnavailable, tag_on_dask

        try:
            n = tag_on_dask(args.folder, args.out, args.checkpoints, args.model, args.address, args.cluster_workers)
        except (ClusterUnavailable, hub.CheckpointError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"tagged {n} images into {args.out} on Dask")
        return 0
    try:  # only the model that tags: loading all of them was an eighth of a 120-picture run
        predictor = Predictor.from_source(args.checkpoints, only=args.model or "default")
    except hub.CheckpointError as e:
        if args.model and "has no model" in str(e):
            parser.error(f"--model {args.model}: {e}")
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = tag_folder(predictor, args.folder, args.out, args.model, args.workers)
    print(f"tagged {n} images into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
