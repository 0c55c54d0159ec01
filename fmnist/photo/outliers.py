"""Pictures of things that are not garments, as the app's pipeline turns them into 28x28: what the not-a-garment
detector learns "not a garment" from (outlier exposure, Hendrycks et al. 2019). Drawn here by
fmnist.photo.render.non_garments with seeds of their own: seeds 0 and 21-24 are the photo benchmark's test set and
seeds 1 and 2 the validation sets the detector's rules are chosen on, so none of those pictures is ever learnt from.

    python -m fmnist.photo.outliers              # writes data/outliers-v3.npz (about 10 minutes on 2 cores)
    python -m fmnist.photo.outliers --digits     # writes data/digits-v1.npz (about 3 minutes; --count N)

The digits are a second file, for a second head of the detector (fmnist.notice.fitting): 400 handwritten digits
photographed by fmnist.photo.render.written, from the MNIST digits that no probe draws.

v3 (1,451 pictures) was built by the pipeline that reads a garment lighter than a light backdrop by its darkness
against white, under today's picture rules. Of what v2 (1,563, built before the `across the picture` rule) held,
they now let through none of the 72 noise pictures and 15 of the 57 landscapes, so the detector no longer learns
those. The digits file comes out byte for byte the same when rebuilt today.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fmnist.data import sha256

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "outliers-v3.npz"
DIGITS_PATH = DEFAULT_PATH.with_name("digits-v1.npz")
SEEDS = range(3, 21)
DIGITS = 400
COMMAND = "python -m fmnist.photo.outliers"


def build(seeds=SEEDS) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 pixels and (N,) kinds of the non-garments that reach the detector: those the picture
    rules (no item, fills the frame, shape, several items) let through, as the app would."""
    from tqdm import tqdm

    from fmnist.notice.rules import picture_rules
    from fmnist.photo import preprocess
    from fmnist.photo.render import non_garments

    pictures = [pair for seed in seeds for pair in non_garments(seed=seed, probe_digits=False)]
    pixels, kinds = [], []
    for kind, picture in tqdm(pictures, desc="non-garments", unit="picture"):
        pre = preprocess(picture)
        if not picture_rules(pre):
            pixels.append(pre.pixels)
            kinds.append(kind.split(":")[0])
    return np.stack(pixels), np.asarray(kinds)


def _digit_job(index: int) -> tuple[np.ndarray, bool]:
    from fmnist.notice.rules import picture_rules
    from fmnist.photo import preprocess
    from fmnist.photo.render.written import written

    pre = preprocess(written(0, index))
    return pre.pixels, bool(picture_rules(pre))


def build_digits(n: int = DIGITS) -> tuple[np.ndarray, np.ndarray]:
    """The same for n photographed digits (fmnist.photo.render.written, seed 0), on both cores."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    with ProcessPoolExecutor(2) as pool:
        done = list(tqdm(pool.map(_digit_job, range(n), chunksize=8), total=n, desc="digits", unit="picture"))
    pixels = np.stack([pixels for pixels, flagged in done if not flagged])
    return pixels, np.asarray(["digit"] * len(pixels))


def load(path: str | Path = DEFAULT_PATH) -> tuple[np.ndarray, str] | None:
    """The pixels and the file's sha256, or None when the file is not there."""
    path = Path(path)
    if not path.is_file():
        return None
    with np.load(path) as z:
        return z["pixels"], sha256(path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--digits", action="store_true", help=f"build the digits file ({DIGITS_PATH.name}) instead")
    p.add_argument("--count", type=int, default=DIGITS, help="digits to draw (default: %(default)s)")
    p.add_argument("--out", help=f"where to write (default: data/{DEFAULT_PATH.name} or data/{DIGITS_PATH.name})")
    args = p.parse_args(argv)
    pixels, kinds = build_digits(args.count) if args.digits else build()
    out = Path(args.out or (DIGITS_PATH if args.digits else DEFAULT_PATH))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(f, pixels=pixels, kinds=kinds, seeds=np.asarray([0] if args.digits else list(SEEDS)))
    tmp.replace(out)
    print(f"{out}: {len(pixels)} pictures of {len(set(kinds.tolist()))} kinds ({out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
