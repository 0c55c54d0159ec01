"""Chores on a folder of trained checkpoints, with the weights left as they are unless said:

    python -m fmnist.checkpoints card --out checkpoints             # rebuild results.json and the model card
    python -m fmnist.checkpoints push --out checkpoints --repo-id USER/fmnist   # upload a folder to the Hub
    python -m fmnist.checkpoints convert --dtype float16 --out checkpoints      # smaller weights, kept only
                                                                    # where the test accuracy holds
    python -m fmnist.checkpoints refit-detector --out checkpoints   # refit the not-a-garment detector
    python -m fmnist.checkpoints gallery --out checkpoints          # the similar-items gallery and features

Every chore acts on the models of --out (default: the bundled checkpoints/), or on --models among them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from fmnist.checkpoints.store import BUNDLED
from fmnist.models.registry import MODEL_NAMES
from fmnist.training.config import TrainConfig
from fmnist.training.flags import model_list


def push(folder: Path, repo_id: str | None) -> int:
    """Upload a folder of checkpoints in one commit, writing its model card first if it has none."""
    from fmnist.checkpoints.hub import CARD_NAME, CheckpointError, PushError, push_to_hub, write_model_card

    try:
        if not (folder / CARD_NAME).is_file():
            write_model_card(folder, repo_id)
        url = push_to_hub(folder, repo_id)
    except (CheckpointError, PushError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    print(f"pushed {folder} to {url}")
    return 0


def card(folder: Path, repo_id: str | None) -> int:
    from fmnist.checkpoints.hub import write_model_card
    from fmnist.checkpoints.store import write_results

    write_results(folder)
    print(f"results: {folder / 'results.json'}\nmodel card: {write_model_card(folder, repo_id)}")
    return 0


def convert(cfg: TrainConfig) -> int:
    from fmnist.checkpoints.convert import convert_weights

    for r in convert_weights(cfg):
        if r.get("already"):
            print(f"{r['model']:<10} already {r['to']}; left as it is")
            continue
        print(
            f"{r['model']:<10} {r['from']} -> {r['to']}: test {r['test_acc_before']:.4f} -> "
            f"{r['test_acc_after']:.4f}, weights {r['bytes_before'] / 1e6:.2f} -> {r['bytes_after'] / 1e6:.2f} MB, "
            + ("kept" if r["kept"] else "not kept (off by more than 0.05 points)")
        )
    return 0


def write_galleries(cfg: TrainConfig) -> list[str]:
    """Write the similar-items gallery (once) and each existing checkpoint's features of it (cfg.models in
    cfg.out_dir): for checkpoints trained before the gallery existed. Weights and metrics stay as they are."""
    from fmnist.serving.gallery import ensure_gallery, write_features
    from fmnist.training.environment import existing_checkpoints

    done = []
    for name, folder, model, config, splits in existing_checkpoints(cfg, allow_limit=True):
        found = ensure_gallery(cfg.out_dir, splits.train.images, splits.train.labels, config["seed"])
        logging.getLogger(__name__).info("%s: gallery features in %s", name, write_features(folder, model, found))
        done.append(name)
    return done


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fmnist.checkpoints", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="chore", required=True)

    def chore(name: str, help: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help, description=help)
        c.add_argument("--out", default=str(BUNDLED), help="the folder of checkpoints (default: checkpoints/)")
        return c

    for name, help in (
        ("card", "rebuild results.json and the model card (README.md) from the folder's checkpoints"),
        ("push", "upload the folder to a Hub model repo in one commit"),
    ):
        chore(name, help).add_argument("--repo-id", help="the Hub model repo, USER/NAME (default: $FMNIST_HUB_REPO)")

    def model_chore(name: str, help: str) -> argparse.ArgumentParser:
        c = chore(name, help)
        c.add_argument("--models", type=model_list, default=None, help=f"from {','.join(MODEL_NAMES)} (all)")
        c.add_argument("--data-dir", help="the folder of the data set's four .gz files")
        return c

    convert_ = model_chore("convert", "re-store the weights in another dtype, kept only where the test accuracy holds")
    convert_.add_argument("--dtype", choices=["float16", "bfloat16", "float32"], default="float16")
    refit = model_chore("refit-detector", "fit the not-a-garment detector of each checkpoint on its own weights")
    refit.add_argument("--photo-data", help="rendered photos it learns from too (default: the repository's)")
    model_chore("gallery", "write the similar-items gallery and each checkpoint's features of it")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ns = build_parser().parse_args(argv)
    folder = Path(ns.out)
    if ns.chore == "card":
        return card(folder, ns.repo_id)
    if ns.chore == "push":
        return push(folder, ns.repo_id)
    cfg = TrainConfig(
        out=str(folder),
        data_dir=ns.data_dir,
        weights_dtype=getattr(ns, "dtype", "float32"),
        photo_data=getattr(ns, "photo_data", None),
        **({"models": ns.models} if ns.models else {}),
    )
    from fmnist.data import DataError

    try:
        if ns.chore == "convert":
            return convert(cfg)
        if ns.chore == "refit-detector":
            from fmnist.notice.fitting import refit_detectors

            print(f"detector fitted for: {', '.join(refit_detectors(cfg))}")
        else:
            print(f"gallery features written for: {', '.join(write_galleries(cfg))}")
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
