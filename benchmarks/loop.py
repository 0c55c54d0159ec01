"""The catalogue loop, measured: a shop whose pictures the default model never trained on corrects 300 of them,
fine-tunes on them, and is judged on 300 other pictures of the same shop.

    python -m benchmarks.loop [--corrected 300] [--judged 300] [--renderer opaque] [--seed 0] [--name loop]

The shop is the held-out `opaque` renderer (never drawn in the photo data the bundled models train on), at its
clean, everyday and hard levels in turn; or, with `--renderer studio`, one studio that photographs every garment
the same way (benchmarks/studio.py, written for this benchmark alone). The corrected pictures are validation
items, their labels known, built into a dataset by fmnist.dataset as a person's checked tags would be; the judged
pictures are test items. Both the bundled model and the fine-tuned one (`train.py --finetune`, into runs/loop/)
read the judged pictures through the app's pipeline and the same items as 28x28; the gap between the two is what
the loop should close.
The fine-tune's own figures (held-out corrected pictures, the data-set test set, its time) come with it. Results
go to benchmarks/results/<name>-cpu.json (loop-cpu.json; loop-900-cpu.json for
`--corrected 900 --name loop-900 --out runs/loop-900`; loop-studio-cpu.json for `--renderer studio --name
loop-studio --out runs/loop-studio`).
"""

import argparse
import csv
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks import studio
from benchmarks._common import ROOT, record
from fmnist import CLASS_NAMES, dataset
from fmnist.checkpoints import store
from fmnist.data import load_raw, load_splits, stratified_split
from fmnist.evaluation.reports import format_table
from fmnist.photo import preprocess
from fmnist.photo.render import render_item
from fmnist.tag.core import CSV_HEADER
from fmnist.training.config import TrainConfig
from fmnist.training.finetune import accuracy, finetune

LEVELS = ("clean", "everyday", "hard")


def _draw(job):
    renderer, level, item, seed, index, path = job
    if renderer == "studio":  # one look for the whole shop: no levels
        picture = studio.render(item, np.random.default_rng([seed, index])).convert("RGB")
    else:
        picture = render_item(renderer, level, item, seed, index).convert("RGB")
    picture.save(path, quality=90)
    return preprocess(path).pixels


def shop_pictures(renderer, images, labels, seed, folder: Path, stem: str) -> np.ndarray:
    """Each item drawn by the shop's renderer (levels in turn), saved as JPEG; -> their 28x28s as the app sees them."""
    folder.mkdir(parents=True, exist_ok=True)
    jobs = [
        (renderer, LEVELS[n % len(LEVELS)], item, seed, n, folder / f"{stem}{n:04d}.jpg")
        for n, item in enumerate(images)
    ]
    with ProcessPoolExecutor(2) as pool:
        return np.stack(list(tqdm(pool.map(_draw, jobs, chunksize=4), total=len(jobs), desc=stem)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corrected", type=int, default=300)
    p.add_argument("--judged", type=int, default=300)
    p.add_argument("--renderer", default="opaque")
    p.add_argument("--model", default="resnet")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "runs" / "loop"))
    p.add_argument("--name", default="loop", help="the result file's name, before -cpu.json")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    val = load_splits(allow_download=False).val
    v_images, v_labels = val.images.numpy(), val.labels.numpy()
    raw = load_raw(allow_download=False)
    corrected = stratified_split(v_labels, args.corrected, args.seed + 11)[1]
    judged = stratified_split(raw.test_labels, args.judged, args.seed + 12)[1]
    work = Path(tempfile.mkdtemp(prefix="fmnist-loop-"))
    shop_pictures(args.renderer, v_images[corrected], v_labels[corrected], 7, work / "shop", "c")
    judged_px = shop_pictures(args.renderer, raw.test_images[judged], raw.test_labels[judged], 8, work / "judged", "j")
    judged_labels, judged_raw = raw.test_labels[judged], raw.test_images[judged]
    with open(work / "tags.csv", "w", newline="") as f:  # a person's checked labels: here, the true classes
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        for n, i in enumerate(corrected):
            writer.writerow([f"c{n:04d}.jpg", "", "", "", "", "", "", "", "", CLASS_NAMES[v_labels[i]]])
    built = dataset.build(work / "shop", work / "tags.csv", work / "dataset")

    bundled, _ = store.load_folder(ROOT / "checkpoints" / args.model)
    bundled.eval()
    start = time.perf_counter()
    row = finetune(TrainConfig(out=args.out, seed=args.seed), ROOT / "checkpoints" / args.model, str(built))
    seconds = time.perf_counter() - start
    tuned, _ = store.load_folder(Path(args.out) / args.model)
    tuned.eval()
    rows = []
    for name, model in (("bundled", bundled), ("fine-tuned", tuned)):
        y = torch.from_numpy(judged_labels)
        photo, items = accuracy(model, torch.from_numpy(judged_px), y), accuracy(model, torch.from_numpy(judged_raw), y)
        rows.append(
            {"model": f"{args.model}, {name}", "judged_photos": photo, "judged_28x28": items, "gap": items - photo}
        )
    f = row["finetune"]
    rows[0] |= {"data_set_test": f["before"]["test"], "held_out_corrected": f["before"]["held_out"]}
    rows[1] |= {"data_set_test": f["after"]["test"], "held_out_corrected": f["after"]["held_out"]}
    print(
        format_table(
            rows,
            [
                ("model", "model", ""),
                ("judged_photos", "judged photos", ".3f"),
                ("judged_28x28", "same items 28x28", ".3f"),
                ("gap", "gap", ".3f"),
                ("held_out_corrected", "held-out corrected", ".3f"),
                ("data_set_test", "data-set test", ".4f"),
            ],
        )
    )
    meta = {
        "renderer": args.renderer,
        "levels": [] if args.renderer == "studio" else list(LEVELS),
        "corrected": args.corrected,
        "judged": args.judged,
        "finetune_seconds": seconds,
        "finetune": f,
    }
    print(
        f"fine-tune: {seconds:.0f} s, of which training {f['seconds']:.0f} s; wrote",
        record(args.name, rows, torch.device("cpu"), meta),
    )


if __name__ == "__main__":
    main()
