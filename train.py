"""Train, evaluate and publish the fmnist models.

    python train.py                                   # all five models, each with its default epochs
    python train.py --models basic_cnn,deep_cnn --epochs 15
    python train.py --baselines                       # the scikit-learn baselines only
    python train.py --limit 2000 --epochs 1           # a quick smoke run
    python train.py --push --repo-id USER/fmnist      # train, then upload checkpoints/ to the Hub
    python train.py --push-only --repo-id USER/fmnist # upload an existing checkpoints/ folder

The flags map one to one onto fmnist.training.TrainConfig.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from fmnist.models import MODEL_NAMES
from fmnist.training import RESULT_COLUMNS, TrainConfig, format_table

BASELINE_COLUMNS = [("model", "model", ""), ("val_acc", "val acc", ".4f"), ("test_acc", "test acc", ".4f"),
                    ("fit_seconds", "fit s", ".1f"), ("train_images", "train images", ",d")]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _model_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODEL_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown model(s) {', '.join(unknown) or '(none)'}; "
                                         f"choose from {', '.join(MODEL_NAMES)}")
    return names


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise argparse.ArgumentTypeError('expected {"model": {"arg": value}}, e.g. {"mobilenet": {"img_size": 96}}')
    return value


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=_model_list, default=None,
                   help=f"comma-separated, from {','.join(MODEL_NAMES)} (default: all)")
    p.add_argument("--epochs", type=_positive_int, help="epochs (default: each model's own)")
    p.add_argument("--batch-size", type=_positive_int, default=d.batch_size)
    p.add_argument("--lr", type=_positive_float, help="peak learning rate (default: each model's own)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default=d.optimizer)
    p.add_argument("--schedule", choices=["onecycle", "cosine"], default=d.schedule)
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--patience", type=_positive_int, default=d.patience, help="early-stopping patience in epochs")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--val-size", type=_positive_int, default=d.val_size, help="validation images held out of the 60k")
    p.add_argument("--limit", type=_positive_int, help="quick run on N training (and at most N val/test) images")
    p.add_argument("--shift-px", type=int, default=d.shift_px, help="random shift augmentation in pixels, 0 = off")
    p.add_argument("--no-hflip", dest="hflip", action="store_false", help="turn off horizontal flips")
    p.add_argument("--erase-p", type=float, default=d.erase_p, help="random erasing probability, 0 = off")
    p.add_argument("--model-args", type=_json_object, default={}, help='JSON, e.g. \'{"mobilenet": {"img_size": 96}}\'')
    p.add_argument("--pretrained-file", help="local ImageNet weights for the MobileNet (timm state dict)")
    p.add_argument("--no-pretrained", action="store_true",
                   help="train the MobileNet from random init when ImageNet weights cannot be had")
    p.add_argument("--out", default=d.out, help="checkpoint folder (default: checkpoints/)")
    p.add_argument("--data-dir", help="folder holding the four Fashion-MNIST .gz files")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--resume", action="store_true", help="continue interrupted runs from their last epoch")
    p.add_argument("--compile", action="store_true", help="torch.compile the model for training")
    p.add_argument("--weights-dtype", choices=["float32", "float16", "bfloat16"], default=d.weights_dtype)
    p.add_argument("--baselines", action="store_true",
                   help="run the scikit-learn baselines (alone, unless --models is given too)")
    p.add_argument("--push", action="store_true", help="after training, upload --out to the Hub")
    p.add_argument("--push-only", action="store_true", help="upload an existing --out folder without training")
    p.add_argument("--repo-id", help="Hub model repo, USER/NAME (default: $FMNIST_HUB_REPO)")
    p.add_argument("--write-card", action="store_true", help="rewrite --out's model card from its checkpoints, no training")
    return p


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    parser = build_parser()
    ns = parser.parse_args(argv)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(ns).items() if k in fields and v is not None}
    cfg = TrainConfig(**values)
    try:
        cfg.validate()
    except ValueError as e:
        parser.error(str(e))
    return cfg, ns


def _merge_results(path: Path, rows: list[dict]) -> list[dict]:
    """Keep one row per model in results.json, so training a subset does not drop the others."""
    old = json.loads(path.read_text()) if path.is_file() else []
    merged = {r["model"]: r for r in old} | {r["model"]: r for r in rows}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(merged.values()), indent=2) + "\n")
    return list(merged.values())


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg, ns = parse_args(argv)
    out = Path(cfg.out)
    if ns.push_only:
        return push(out, ns.repo_id)
    if ns.write_card:
        from fmnist.hub import write_model_card

        print(f"model card: {write_model_card(out, ns.repo_id)}")
        return 0

    from fmnist.data import DataError
    from fmnist.training import Dist, PretrainedUnavailable, train_all

    try:
        if ns.baselines:
            from fmnist.baselines import run_baselines
            from fmnist.data import load_splits

            rows = run_baselines(load_splits(cfg.data_dir, cfg.val_size, cfg.seed, cfg.limit), cfg.seed)
            (out).mkdir(parents=True, exist_ok=True)
            (out / "baselines.json").write_text(json.dumps(rows, indent=2) + "\n")
            print("\nBaselines (scikit-learn, same split):\n" + format_table(rows, BASELINE_COLUMNS))
            if ns.models is None:
                print_overview(out)
                return 0
        rows = train_all(cfg)
    except (DataError, PretrainedUnavailable, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not Dist.from_env().main:  # torchrun: rank 0 writes the tables and the card
        return 0
    _merge_results(out / "results.json", rows)
    print("\nResults (test set, temperature-calibrated probabilities):\n" + format_table(rows, RESULT_COLUMNS))
    print_overview(out)
    from fmnist.hub import write_model_card

    print(f"model card: {write_model_card(out, ns.repo_id)}")
    if ns.push:
        return push(out, ns.repo_id)
    return 0


def print_overview(out: Path) -> None:
    """One table of every network and baseline recorded in out/: test accuracy and time to train."""
    rows = []
    for r in json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else []:
        rows.append({"model": r["model"], "kind": "network", "test_acc": r["test_acc"],
                     "train_s": r["s_per_epoch"] * r["epochs"]})
    for r in json.loads((out / "baselines.json").read_text()) if (out / "baselines.json").is_file() else []:
        rows.append({"model": r["model"], "kind": "scikit-learn", "test_acc": r["test_acc"], "train_s": r["fit_seconds"]})
    if rows:
        rows.sort(key=lambda r: -r["test_acc"])
        print(f"\nAll models in {out}/ (test accuracy; training or fit time):\n" + format_table(
            rows, [("model", "model", ""), ("kind", "kind", ""), ("test_acc", "test acc", ".4f"),
                   ("train_s", "train s", ".0f")]))


def push(folder: Path, repo_id: str | None) -> int:
    from fmnist.hub import CARD_NAME, CheckpointError, PushError, push_to_hub, write_model_card

    try:
        if not (folder / CARD_NAME).is_file():
            write_model_card(folder, repo_id)
        url = push_to_hub(folder, repo_id)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except PushError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    print(f"pushed {folder} to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
