"""Training on a GPU machine of your own, from this side: the data to copy there, the size of what you send,
and what comes back (docs/gpu.md).

    python -m fmnist.gpu data            # the four Fashion-MNIST files as .xz in .gpu/data (git-ignored)
    python -m fmnist.gpu size            # what you send (tracked files + .gpu); exit 1 above --limit-mib
    python -m fmnist.gpu show            # the run to start there, word for word
    python -m fmnist.gpu unpack PACK --into runs/gpu [--adopt checkpoints]
                                         # after it: unpack, load and predict with each model, adopt the better

The run itself is `bash scripts/gpu_train.sh` (python -m fmnist.gpu run, fmnist.gpu.plan) on the GPU machine,
which needs no network: the data travels in .gpu/data, xz-compressed (25.2 MiB against 29.5 MiB as gzip), and
the loader reads it.
"""

from __future__ import annotations

import argparse
import json
import lzma
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CARRY = (".gpu",)
# what one remote run may be sent (--limit-mib): a service that runs a command on a lent machine usually caps the
# upload; 64 MiB holds the tracked files, the data and the wide resnet's folder once it is bundled
LIMIT_BYTES = 64 * 2**20
TARGET_BYTES = 52 * 2**20  # tracked files and the data, with room for the wide resnet's folder (6-8 MB)
BUDGET_S = 360  # the run's time budget: training and packing in 6 minutes, under a 7-minute timeout
CARRIED_DATA = ROOT / ".gpu" / "data"  # git-ignored; CARRY names .gpu
CALL = {
    "command": f'PYTHONUNBUFFERED=1 bash scripts/gpu_train.sh --budget-s {BUDGET_S} --pack "$OUT"',
    "carry": list(CARRY),
    "timeout_s": BUDGET_S + 60,
}


class NoData(RuntimeError):
    """The data set is not on this machine: the call stops before spending its minutes."""


def find_data(explicit: str | None = None) -> Path:
    """The folder holding the real four files: --data-dir if given; else the carried .gpu/data, then the loader's
    own places (never a download). Each is checked by the digests of its uncompressed bytes."""
    from fmnist.data import DataError, find_data_dir, verify_files

    candidates = [Path(explicit)] if explicit else [CARRIED_DATA]
    if not explicit:
        try:
            candidates.append(find_data_dir(allow_download=False))
        except DataError:
            pass
    seen = []
    for folder in dict.fromkeys(candidates):
        problems = verify_files(folder) if folder.is_dir() else [f"{folder} does not exist"]
        if not problems:
            return folder
        seen.append(f"{folder}: {problems[0]}")
    raise NoData(
        "error: no Fashion-MNIST data set on this machine (" + "; ".join(seen) + "). On a machine that has "
        "it, run `python -m fmnist.gpu data`, then copy .gpu beside the code (docs/gpu.md)."
    )


def write_data(dest: Path, source: Path | None = None) -> list[Path]:
    """The four files, uncompressed from wherever the loader finds them and written as .xz into dest; checked
    by digest afterwards."""
    from fmnist.checkpoints.store import atomic_write_bytes
    from fmnist.data import FILES, _read_bytes, find_data_dir, locate, verify_files

    source = Path(source) if source else find_data_dir(allow_download=False)
    written = []
    for name, _ in FILES.values():
        target = dest / f"{name.removesuffix('.gz')}.xz"
        print(f"  {locate(source, name)} -> {target}", flush=True)
        atomic_write_bytes(target, lzma.compress(_read_bytes(locate(source, name)), preset=9 | lzma.PRESET_EXTREME))
        written.append(target)
    problems = verify_files(dest)
    if problems:
        raise RuntimeError(f"{dest}: " + "; ".join(problems))
    return written


def sent_files(carry: tuple[str, ...] = CARRY, root: Path | None = None) -> dict[str, int]:
    """Bytes that a call sends, by part: git's tracked files, untracked files git does not ignore, each carry."""
    root = root or ROOT

    def listed(*flags: str) -> list[Path]:
        out = subprocess.run(["git", "ls-files", "-z", *flags], cwd=root, capture_output=True, check=True).stdout
        return [root / p for p in out.decode().split("\0") if p]

    def size(paths) -> int:
        return sum(p.stat().st_size for p in paths if p.is_file() and not p.is_symlink())

    parts = {"tracked": size(listed()), "untracked, not ignored": size(listed("-o", "--exclude-standard"))}
    for c in carry:
        path = root / c
        parts[f"carry {c}"] = size(path.rglob("*")) if path.is_dir() else size([path])
    return parts


def unpack(pack_dir: Path, into: Path) -> Path:
    """Join the parts and extract: into/checkpoints/NAME folders and into/plan.json."""
    into.mkdir(parents=True, exist_ok=True)
    joined = into / "checkpoints.tar.gz"
    with open(joined, "wb") as out:
        for part in sorted(pack_dir.glob("checkpoints.tar.gz.part*")):
            out.write(part.read_bytes())
    with tarfile.open(joined) as tar:
        tar.extractall(into, filter="data")
    joined.unlink()
    shutil.copy(pack_dir / "plan.json", into / "plan.json")
    return into / "checkpoints"


def check_models(folder: Path) -> dict:
    """Load every model folder with the app's predictor and classify a data-set example: {name: top-1}."""
    from PIL import Image

    from fmnist.serving.predict import Predictor

    predictor = Predictor.from_source(str(folder))
    example = Image.open(next((ROOT / "examples").glob("*.png")))
    return {name: predictor.predict(example, name).top3[0][0] for name in predictor.models}


def adopt(unpacked: Path, bundled: Path) -> list[str]:
    """Replace each bundled model whose GPU run is better on validation (and add the best model); then rebuild
    results.json and the model card there. Returns the names replaced or added."""
    from fmnist.checkpoints.store import load_folder, publish_folder
    from fmnist.evaluation.reports import record_outputs
    from fmnist.serving.gallery import GALLERY_NAME, load_gallery, write_features

    taken = []
    for folder in sorted(p for p in unpacked.iterdir() if (p / "metrics.json").is_file()):
        new_val = json.loads((folder / "metrics.json").read_text())["val"]["accuracy"]
        old = bundled / folder.name / "metrics.json"
        old_val = json.loads(old.read_text())["val"]["accuracy"] if old.is_file() else -1.0
        if new_val > old_val:
            staged = bundled / ".partial" / folder.name
            shutil.rmtree(staged, ignore_errors=True)
            shutil.copytree(folder, staged)
            publish_folder(staged, bundled / folder.name)
            taken.append(folder.name)
    if not (bundled / GALLERY_NAME).is_file() and (unpacked / GALLERY_NAME).is_file():
        shutil.copy(unpacked / GALLERY_NAME, bundled / GALLERY_NAME)
    gallery = load_gallery(bundled)
    for name in taken:  # similar items: features of the gallery that folder serves (a seed may have drawn another)
        model, _ = load_folder(bundled / name)
        write_features(bundled / name, model, gallery)
    record_outputs(bundled)
    return taken


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m fmnist.gpu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="verb", required=True)
    d = sub.add_parser("data", help="write the data set as .xz into the carried folder")
    d.add_argument("--out", type=Path, default=CARRIED_DATA)
    d.add_argument(
        "--from", dest="source", type=Path, help="the data set's folder (default: where the loader finds it)"
    )
    s = sub.add_parser("size", help="the bytes a remote run is sent; exit 1 above --limit-mib")
    s.add_argument("--carry", nargs="*", default=list(CARRY), help="folders copied beside the tracked files")
    s.add_argument(
        "--limit-mib", type=float, default=LIMIT_BYTES / 2**20, help="the most it may send (default %(default)s)"
    )
    sub.add_parser("show", help="the run to start on the GPU machine, word for word")
    sub.add_parser("run", help="on the GPU machine: train, then pack (python -m fmnist.gpu run --help)")
    u = sub.add_parser("unpack", help="join and extract a pack, load and predict with every model")
    u.add_argument("pack_dir", type=Path)
    u.add_argument("--into", type=Path, default=Path("runs/gpu"))
    u.add_argument("--adopt", type=Path, help="replace the models in this folder that the GPU beat on validation")
    a = p.parse_args(argv)
    if a.verb == "data":
        written = write_data(a.out, a.source)
        print(f"{sum(f.stat().st_size for f in written) / 2**20:.1f} MiB in {a.out}, digests checked")
    elif a.verb == "size":
        parts = sent_files(tuple(a.carry))
        total = sum(parts.values())
        for name, n in parts.items():
            print(f"  {name:<24} {n / 2**20:7.2f} MiB")
        print(
            f"  {'sent':<24} {total / 2**20:7.2f} MiB (limit {a.limit_mib:g} MiB, "
            f"target {TARGET_BYTES / 2**20:.0f} MiB)"
        )
        if "carry .gpu" in parts and parts["carry .gpu"] == 0:
            print("  warning: nothing in .gpu: run `python -m fmnist.gpu data` first", file=sys.stderr)
        if total > a.limit_mib * 2**20:
            print(f"error: over the {a.limit_mib:g} MiB limit", file=sys.stderr)
            return 1
    elif a.verb == "show":
        print(json.dumps(CALL, indent=1))
    else:
        unpacked = unpack(a.pack_dir, a.into)
        print("every model loads and predicts:", check_models(unpacked))
        if a.adopt:
            print("adopted:", adopt(unpacked, a.adopt) or "none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
