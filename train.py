"""Train and evaluate the fmnist models and, with --push, publish them on the Hugging Face Hub.

    python train.py --limit 2000 --epochs 1 --no-pretrained   # a quick smoke run, into runs/fashion-mnist/
    python train.py --models basic_cnn,deep_cnn --epochs 15   # some models, into runs/fashion-mnist/
    python train.py --models resnet --out checkpoints         # replace a bundled model (full runs only)
    python train.py --dataset mnist --models basic_cnn        # MNIST, into runs/mnist/
    python train.py --models basic_cnn --params search/basic_cnn/best.json    # with what a search found
    python train.py --push --repo-id USER/fmnist              # train, then upload the output folder
    python train.py --finetune checkpoints/resnet --photos shop-tags/ --out runs/shop   # on checked pictures

Runs write to runs/<dataset>/ unless --out names a folder. The bundled checkpoints/ (what the app
serves) changes only when named with --out checkpoints, never from a --limit or short run (--force), and
never to a model worse on validation than the one it replaces (--force). Each model trains in
OUT/.partial/ and replaces OUT/NAME only once finished; results.json and the model card are rebuilt
after every model. Every condition that could stop a run is checked before its first epoch.

Other jobs have commands of their own: python -m fmnist.checkpoints (card, push, convert, refit-detector,
gallery), python -m fmnist.training.search, python -m fmnist.training.speedrun, python -m
fmnist.training.baselines.
"""

from __future__ import annotations

import argparse
import logging
import sys

from fmnist.evaluation.reports import RESULT_COLUMNS, format_table, overview
from fmnist.training.config import TrainConfig
from fmnist.training.flags import add_recipe_flags, config_from, recipe_epilog


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, epilog=recipe_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_recipe_flags(p)
    tune = p.add_argument_group("fine-tuning on checked pictures (docs/loop.md)")
    tune.add_argument("--finetune", metavar="CHECKPOINT", help="start from this model folder, e.g. checkpoints/resnet")
    tune.add_argument(
        "--photos", metavar="DATASET", help="the checked pictures: a dataset folder or a Hub id USER/NAME"
    )
    publish = p.add_argument_group("publishing")
    publish.add_argument("--push", action="store_true", help="after training, upload --out to the Hub")
    publish.add_argument("--repo-id", help="the Hub model repo, USER/NAME (default: $FMNIST_HUB_REPO)")
    return p


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    parser = build_parser()
    ns = parser.parse_args(argv)
    return config_from(parser, ns, argv), ns


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg, ns = parse_args(argv)
    out = cfg.out_dir
    if ns.finetune or ns.photos:
        return finetune(cfg, ns)
    from fmnist.data import DataError
    from fmnist.models.pretrained import PretrainedUnavailable
    from fmnist.training.environment import Dist
    from fmnist.training.loop import train_all

    try:
        rows = train_all(cfg)
    except (DataError, PretrainedUnavailable, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not Dist.from_env().main:  # torchrun: rank 0 writes the tables and the card
        return 0
    refused = [r["refused"] for r in rows if "refused" in r]
    rows = [r for r in rows if "refused" not in r]
    if rows:
        print(
            f"\nResults of this run (test set, temperature-calibrated probabilities), in {out}/:\n"
            + format_table(rows, RESULT_COLUMNS)
        )
    print(overview(out))
    print(f"model card: {out / 'README.md'}")
    if refused:
        print("\n".join(f"error: {r}" for r in refused), file=sys.stderr)
        return 2
    if ns.push:
        from fmnist.checkpoints.cli import push

        return push(out, ns.repo_id)
    return 0


def finetune(cfg: TrainConfig, ns: argparse.Namespace) -> int:
    """--finetune CHECKPOINT --photos DATASET: before and after on screen; a fall of the data-set test accuracy
    beyond half a point is said loudly and refuses --push unless --force."""
    from fmnist.data import DataError
    from fmnist.training.finetune import TEST_DROP_LIMIT, FinetuneError
    from fmnist.training.finetune import finetune as run

    if not (ns.finetune and ns.photos):
        print("error: --finetune CHECKPOINT and --photos DATASET go together", file=sys.stderr)
        return 2
    try:
        row = run(cfg, ns.finetune, ns.photos)
    except (FinetuneError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    f = row["finetune"]
    print(
        f"\nFine-tuned {row['model']} on {f['trained_on']} pictures of {ns.photos} in {f['seconds']:.0f} s, into "
        f"{cfg.out_dir / row['model']}/:\n"
        f"  the {f['held_out']} held-out pictures: {100 * f['before']['held_out']:.1f} % -> "
        f"{100 * f['after']['held_out']:.1f} %\n"
        f"  the data-set test set: {100 * f['before']['test']:.2f} % -> {100 * f['after']['test']:.2f} %"
    )
    if f["test_drop"] > TEST_DROP_LIMIT:
        print(
            f"WARNING: the data-set test accuracy fell by {100 * f['test_drop']:.2f} points, more than "
            f"{100 * TEST_DROP_LIMIT:.1f}: the model is forgetting the data set.",
            file=sys.stderr,
        )
        if ns.push and not cfg.force:
            print("error: not pushed (give --force to push it anyway)", file=sys.stderr)
            return 2
    if ns.push:
        from fmnist.checkpoints.cli import push

        return push(cfg.out_dir, ns.repo_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
