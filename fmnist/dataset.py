"""A shop's checked tags as a Hugging Face dataset, in the image-folder layout that `datasets` reads.

    python -m fmnist.tag photos/ --out tags.csv              # then fill its label column where you checked
    python -m fmnist.dataset build photos/ tags.csv OUT      # the labelled rows: train/ (pictures, metadata.csv), card
    python -m fmnist.dataset push OUT USER/NAME [--private]  # a dataset repo on the Hub, in one commit

`label` holds a class name (any case: `t-shirt/top`, `Ankle boot`) or `skip` (looked at, and not a garment or
not to be used); rows with an empty label are left out. The dataset loads with
`datasets.load_dataset("imagefolder", data_dir=OUT)`: one row per picture, with its `label` (the class name),
the model's answer `model_top1` and its probability `model_p1`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fmnist import CLASS_NAMES, publish
from fmnist.data import sha256

LABEL_COLUMN = "label"
SKIP = "skip"
METADATA = "metadata.csv"
# the pictures and metadata.csv go in a folder named for their split: without it, `datasets` takes a picture whose
# name holds "test", "val" or "dev" for another split, and a split without metadata.csv loses every label
SPLIT = "train"
CARD = "README.md"
FIELDS = ["file_name", "label", "model_top1", "model_p1"]


class DatasetError(ValueError):
    """A tags file that cannot become a dataset as it is: each line names the row and why."""


@dataclass
class Labelled:
    row: int  # the CSV's row number as a spreadsheet shows it (the header is row 1)
    source: Path
    label: str
    model_top1: str
    model_p1: float | None


def _class_name(text: str) -> str | None:
    wanted = text.strip().casefold()
    return next((c for c in CLASS_NAMES if c.casefold() == wanted), None)


def read_labels(
    folder: str | os.PathLike, tags_csv: str | os.PathLike, first_row: int = 2
) -> tuple[list[Labelled], int]:
    """The rows of tags_csv that carry a class name, each checked (its picture is in folder, its class is one of
    the ten, no picture twice by content), and how many say `skip`. Raises DatasetError naming every bad row,
    numbered from first_row (2: as a spreadsheet shows the CSV under its header; 1: as the app's table does)."""
    folder, tags_csv = Path(folder), Path(tags_csv)
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder of pictures")
    try:
        with open(tags_csv, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = reader.fieldnames or []
    except OSError as e:
        raise DatasetError(f"{tags_csv}: {e.strerror or e}") from None
    if "file" not in columns or LABEL_COLUMN not in columns:
        raise DatasetError(
            f"{tags_csv} has no 'file' and '{LABEL_COLUMN}' columns: write it with python -m fmnist.tag FOLDER "
            f"--out {tags_csv.name}, then fill its {LABEL_COLUMN} column"
        )
    labelled, skipped, problems, seen = [], 0, [], {}
    for n, row in enumerate(rows, start=first_row):
        text = (row.get(LABEL_COLUMN) or "").strip()
        if not text:
            continue
        if text.casefold() == SKIP:
            skipped += 1
            continue
        name = row.get("file") or ""
        label = _class_name(text)
        if label is None:
            problems.append(
                f"row {n} ({name}): '{text}' is not a class; write one of {', '.join(CLASS_NAMES)}, or {SKIP}"
            )
            continue
        source = Path(name) if Path(name).is_absolute() else folder / name
        if not source.is_file() and (folder / Path(name).name).is_file():
            source = folder / Path(name).name  # the CSV names the path as it was given to fmnist.tag
        if not source.is_file():
            problems.append(f"row {n} ({name}): no such picture in {folder}")
            continue
        digest = sha256(source)
        if digest in seen:
            problems.append(f"row {n} ({name}): the same picture as row {seen[digest]}; keep one of them")
            continue
        seen[digest] = n
        try:
            p1 = float(row.get("p1") or "")
        except ValueError:
            p1 = None
        labelled.append(Labelled(n, source, label, row.get("top1") or "", p1))
    if problems:
        raise DatasetError("\n".join(problems))
    return labelled, skipped


def dataset_card(rows: list[Labelled], skipped: int, command: str, license_id: str) -> str:
    """README.md: front matter for the Hub, then counts per class and how the dataset was made."""
    counts = Counter(r.label for r in rows)
    agreed = sum(r.label == r.model_top1 for r in rows)
    front = "\n".join(
        [
            "---",
            f"license: {license_id}",
            "task_categories:",
            "- image-classification",
            "tags:",
            "- fashion-mnist",
            "- fmnist",
            f"pretty_name: fmnist corrected tags ({len(rows)} pictures)",
            "class_names:",
            *[f"- {json.dumps(c)}" for c in CLASS_NAMES],
            "---",
        ]
    )
    table = "\n".join(f"| {c} | {counts.get(c, 0)} |" for c in CLASS_NAMES)
    return f"""{front}

# fmnist corrected tags

Photographs of garments, each with its class as a person checked it, in the ten classes of
[Fashion-MNIST](https://github.com/zalandoresearch/fashion-mnist). They load with
`datasets.load_dataset("imagefolder", data_dir=...)` (or the repo's id): `image`, `label` (the class name),
`model_top1` and `model_p1` (what the fmnist model answered before the check, and its calibrated probability).

| class | pictures |
|---|---|
{table}

**How it was made.** The pictures were tagged by `python -m fmnist.tag`, a person filled the `label` column of
its CSV where they had checked a picture, and `{command}` kept the labelled rows ({time.strftime("%Y-%m-%d")}):
{len(rows)} pictures, {skipped} marked `{SKIP}` and left out. The model's answer agreed with the person on
{agreed} of {len(rows)}.
"""


def build(
    folder: str | os.PathLike,
    tags_csv: str | os.PathLike,
    out: str | os.PathLike,
    license_id: str = "other",
    command: str = "python -m fmnist.dataset build",
    first_row: int = 2,
) -> Path:
    """The dataset folder out: the labelled pictures and metadata.csv in out/train/, and the card. Written beside out
    and renamed into place at the end, so that nothing is left half-written; an existing non-empty out is
    refused."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DatasetError(f"{out} already exists and is not empty: name a new folder")
    rows, skipped = read_labels(folder, tags_csv, first_row)
    if not rows:
        raise DatasetError(f"no row of {tags_csv} carries a class in its {LABEL_COLUMN} column: nothing to build")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / SPLIT).mkdir(parents=True)
    names: set[str] = set()
    with open(partial / SPLIT / METADATA, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        for r in rows:
            name, k = r.source.name, 1
            while name.casefold() in names:  # two folders' pictures of one name
                name, k = f"{r.source.stem}-{k}{r.source.suffix}", k + 1
            names.add(name.casefold())
            shutil.copyfile(r.source, partial / SPLIT / name)
            writer.writerow([name, r.label, r.model_top1, "" if r.model_p1 is None else f"{r.model_p1:.4f}"])
    (partial / CARD).write_text(dataset_card(rows, skipped, command, license_id))
    if out.exists():
        out.rmdir()
    os.replace(partial, out)
    return out


def size(out: str | os.PathLike) -> int:
    """The pictures in a built dataset folder: the rows of its metadata.csv."""
    with open(Path(out) / SPLIT / METADATA, newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


def push(out: str | os.PathLike, repo_id: str, private: bool = False, token: str | None = None, api=None) -> str:
    """Upload a built dataset folder to a dataset repo on the Hub in one commit; returns its address."""
    out = Path(out)
    if not (out / SPLIT / METADATA).is_file() or not (out / CARD).is_file():
        raise DatasetError(f"{out} is not a built dataset (no {SPLIT}/{METADATA} and {CARD}): run `build` first")
    if repo_id.count("/") != 1:
        raise DatasetError(f"the dataset repo must be USER/NAME, got {repo_id!r}")
    api, token = publish.client(token, api, DatasetError, "push again")
    hf = publish.hub()
    files = sorted(p for p in out.rglob("*") if p.is_file())
    with publish.told(DatasetError, f"pushing {out} to {repo_id}", token, "run the same command again"):
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        ops = [hf.CommitOperationAdd(path_in_repo=p.relative_to(out).as_posix(), path_or_fileobj=str(p)) for p in files]
        message = f"fmnist corrected tags: {len(files) - 2} pictures"
        api.create_commit(repo_id, ops, commit_message=message, repo_type="dataset")
    return str(url)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m fmnist.dataset", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="verb", required=True)
    b = sub.add_parser("build", help="the labelled rows of a tags CSV as a dataset folder")
    b.add_argument("folder", help="the folder of pictures that was tagged")
    b.add_argument("tags", help="the tags CSV, its label column filled")
    b.add_argument("out", help="a new folder for the dataset")
    b.add_argument("--license", default="other", help="the pictures' licence, for the card (default: %(default)s)")
    u = sub.add_parser("push", help="upload a built dataset to a Hub dataset repo")
    u.add_argument("out", help="the dataset folder")
    u.add_argument("repo_id", metavar="USER/NAME")
    u.add_argument("--private", action="store_true")
    args = p.parse_args(argv)
    try:
        if args.verb == "build":
            command = "python -m fmnist.dataset " + " ".join(sys.argv[1:] if argv is None else argv)
            out = build(args.folder, args.tags, args.out, args.license, command)
            print(f"built {out}: {size(out)} pictures ({out / CARD})")
            return 0
        print(f"pushed {args.out} to {push(args.out, args.repo_id, args.private)}")
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
