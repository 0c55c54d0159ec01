"""Train, evaluate, search and publish the fmnist models.

    python train.py --limit 2000 --epochs 1 --no-pretrained   # a quick smoke run, into runs/fashion-mnist/
    python train.py --models basic_cnn,deep_cnn --epochs 15   # some models, into runs/fashion-mnist/
    python train.py --models resnet --out checkpoints         # replace a bundled model (full runs only)
    python train.py --baselines                               # the scikit-learn baselines only
    python train.py --dataset mnist --models basic_cnn        # MNIST, into runs/mnist/
    python train.py --search basic_cnn --trials 20 --limit 10000 --epochs 3   # Optuna search
    python train.py --models basic_cnn --params search/basic_cnn/best.json    # train with what it found
    python train.py --push --repo-id USER/fmnist              # train, then upload the output folder
    python train.py --push-only --out checkpoints --repo-id USER/fmnist       # upload an existing folder

Runs write to runs/<dataset>/ unless --out names a folder. The bundled checkpoints/ (what the app
serves) changes only when named with --out checkpoints, never from a --limit or short run (--force), and
never to a model worse on validation than the one it replaces (--force). Each model trains in
OUT/.partial/ and replaces OUT/NAME only once finished; results.json and the model card are rebuilt
after every model. Every condition that could stop a run is checked before its first epoch.

The flags map one to one onto fmnist.config.TrainConfig.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import sys
from pathlib import Path

from fmnist.config import TrainConfig, apply_params
from fmnist.models import MODEL_NAMES
from fmnist.reports import RESULT_COLUMNS, format_table

BASELINE_COLUMNS = [
    ("model", "model", ""),
    ("val_acc", "val acc", ".4f"),
    ("test_acc", "test acc", ".4f"),
    ("fit_seconds", "fit s", ".1f"),
    ("train_images", "train images", ",d"),
]


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
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODEL_NAMES)}"
        )
    return names


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise argparse.ArgumentTypeError('expected {"model": {"arg": value}}, e.g. {"mobilenet": {"img_size": 96}}')
    return value


def _nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--models", type=_model_list, default=None, help=f"comma-separated, from {','.join(MODEL_NAMES)} (default: all)"
    )
    p.add_argument(
        "--dataset",
        choices=["fashion-mnist", "mnist"],
        default=d.dataset,
        help="which IDX data set to train on (default: %(default)s; the app serves Fashion-MNIST only)",
    )
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
    p.add_argument(
        "--limit",
        type=_positive_int,
        help="quick run on N training (and N/4 val and test) images; never written into checkpoints/",
    )
    aug = p.add_argument_group("augmentation (default: each model's own, from the registry)")
    aug.add_argument("--shift-px", type=int, help="random shift in pixels, 0 = off")
    aug.add_argument("--hflip", action=argparse.BooleanOptionalAction, help="random horizontal flips")
    aug.add_argument("--rotate-deg", type=_nonnegative_float, help="random rotation up to this many degrees, 0 = off")
    aug.add_argument("--zoom", type=_nonnegative_float, help="random scale in [1 - zoom, 1 + zoom], 0 = off")
    aug.add_argument("--erase-p", type=float, help="random erasing probability, 0 = off")
    aug.add_argument(
        "--photo-p",
        type=float,
        help="chance per image of the degradations a photo's preprocessing "
        "leaves (levels, gamma, colour floor, blur, residue), 0 = off",
    )
    aug.add_argument(
        "--print-p",
        type=float,
        help="chance per image of a print (stripes, checks, dots, motifs) "
        "inside its silhouette, 0 = off (fmnist.prints)",
    )
    aug.add_argument(
        "--print-faint",
        type=float,
        help="share of the prints on a faint body (a pale garment under a "
        "dark print: the print outshines the body), 0 = off",
    )
    aug.add_argument(
        "--bend-p",
        type=float,
        help="chance per image of its shape bent by a smooth random field (a "
        "garment not laid flat), 0 = off (fmnist.augment.bend)",
    )
    aug.add_argument(
        "--flat-p",
        type=float,
        help="chance per image of its inside flattened towards one tone (a "
        "fabric whose details barely show), 0 = off (fmnist.augment.flatten)",
    )
    aug.add_argument(
        "--photo-data",
        metavar="PATH",
        help="domain randomisation: a cache of training items rendered as photos and preprocessed "
        "(the repository holds data/photo-data-v4.npz, from python -m fmnist.photo.build)",
    )
    aug.add_argument(
        "--photo-share",
        type=_nonnegative_float,
        default=d.photo_share,
        help="chance per training image of being swapped for a picture of --photo-data (default 0)",
    )
    p.add_argument("--model-args", type=_json_object, default={}, help='JSON, e.g. \'{"mobilenet": {"img_size": 96}}\'')
    p.add_argument("--params", help="a best.json written by --search: its settings, under any flag given explicitly")
    p.add_argument("--pretrained-file", help="local ImageNet weights for the MobileNet (timm state dict)")
    p.add_argument(
        "--no-pretrained",
        action="store_true",
        help="train the MobileNet from random init when ImageNet weights cannot be had",
    )
    p.add_argument(
        "--out",
        help="output folder (default: runs/<dataset>/); the bundled checkpoints/ only when "
        "named, and never for --limit runs",
    )
    p.add_argument("--data-dir", help="folder holding the data set's four .gz files")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--resume", action="store_true", help="continue interrupted runs from their last epoch")
    p.add_argument(
        "--force",
        action="store_true",
        help="with --out checkpoints: replace a bundled model even by a short run, or by one that is "
        "worse on validation",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the model for training")
    track = p.add_argument_group("experiment tracking (trackio; local SQLite, `trackio show` opens the dashboard)")
    track.add_argument("--track", action="store_true", help="log each model's run (and each search trial) to trackio")
    track.add_argument(
        "--track-project",
        default=d.track_project,
        help="the trackio project every model of this call goes into (default: %(default)s)",
    )
    track.add_argument(
        "--track-space",
        metavar="USER/NAME",
        help="also sync the project to this Hugging Face Space (without it, nothing leaves the machine)",
    )
    p.add_argument("--weights-dtype", choices=["float32", "float16", "bfloat16"], default=d.weights_dtype)
    p.add_argument(
        "--baselines", action="store_true", help="run the scikit-learn baselines (alone, unless --models is given too)"
    )
    search = p.add_argument_group("hyperparameter search (Optuna)")
    search.add_argument(
        "--search",
        metavar="MODEL",
        choices=MODEL_NAMES,
        help="search MODEL's hyperparameters on the validation split; writes search/MODEL/best.json",
    )
    search.add_argument(
        "--trials",
        type=_positive_int,
        default=20,
        help="finished trials the study should hold, counted over every worker (default: %(default)s)",
    )
    search.add_argument("--timeout", type=_positive_float, help="start no new trial after this many seconds")
    search.add_argument(
        "--storage",
        help="Optuna storage URL (default: sqlite:///search/MODEL/study.db); give one "
        "PostgreSQL or MySQL URL to every worker to search together",
    )
    search.add_argument("--search-dir", default="search", help="where search/MODEL/ goes (default: %(default)s)")
    preset = p.add_argument_group("presets")
    preset.add_argument(
        "--preset",
        choices=["speedrun"],
        help="speedrun: timed runs to 94 %% test accuracy, airbench's rules (fmnist.speedrun); "
        "--epochs, --batch-size, --lr, --seed, --limit, --device and --models[0] override it",
    )
    preset.add_argument("--runs", type=_positive_int, default=5, help="--preset speedrun: timed runs (default 5)")
    preset.add_argument(
        "--speedrun-out", help="--preset speedrun: the results file (default benchmarks/results/speedrun-<device>.json)"
    )
    p.add_argument("--push", action="store_true", help="after training, upload --out to the Hub")
    p.add_argument("--push-only", action="store_true", help="upload an existing --out folder without training")
    p.add_argument("--repo-id", help="Hub model repo, USER/NAME (default: $FMNIST_HUB_REPO)")
    p.add_argument(
        "--write-card",
        action="store_true",
        help="rebuild --out's results.json and model card from its checkpoints, no training",
    )
    p.add_argument(
        "--refit-detector",
        action="store_true",
        help="fit the not-a-garment detector of existing checkpoints in --out (weights unchanged)",
    )
    p.add_argument(
        "--convert-weights",
        action="store_true",
        help="re-store existing checkpoints in --out with --weights-dtype, each kept only where its test "
        "accuracy holds within 0.05 points (fmnist.convert)",
    )
    p.add_argument(
        "--write-gallery",
        action="store_true",
        help="write the similar-items gallery and each existing checkpoint's features of it into --out "
        "(weights unchanged; training writes them by itself)",
    )
    return p


def _explicit_flags(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The destinations the user gave on the command line (a parse with every default suppressed)."""
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return set(vars(probe.parse_known_args(argv)[0]))


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, argparse.Namespace]:
    parser = build_parser()
    ns = parser.parse_args(argv)
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(ns).items() if k in fields and v is not None}
    cfg = TrainConfig(**values)
    if ns.search and ns.models is None:
        cfg.models = [ns.search]
    if cfg.params:
        try:
            params = json.loads(Path(cfg.params).read_text())
        except (OSError, json.JSONDecodeError) as e:
            parser.error(f"--params {cfg.params}: {e}")
        cfg = apply_params(cfg, params, _explicit_flags(parser, argv))
    try:
        cfg.validate()
    except ValueError as e:
        parser.error(str(e))
    return cfg, ns


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg, ns = parse_args(argv)
    out = cfg.out_dir
    if ns.push_only:
        return push(out, ns.repo_id)
    if ns.preset == "speedrun":
        return speedrun(cfg, ns, argv)
    if ns.write_card:
        from fmnist.checkpoint import write_results
        from fmnist.hub import write_model_card

        write_results(out)
        print(f"results: {out / 'results.json'}\nmodel card: {write_model_card(out, ns.repo_id)}")
        return 0

    from fmnist.data import DataError
    from fmnist.detector import refit_detectors
    from fmnist.gallery import write_galleries
    from fmnist.model_init import PretrainedUnavailable
    from fmnist.runs import Dist
    from fmnist.training import train_all

    try:
        if ns.refit_detector:
            print(f"detector fitted for: {', '.join(refit_detectors(cfg))}")
            return 0
        if ns.convert_weights:
            from fmnist.convert import convert_weights

            for r in convert_weights(cfg):
                if r.get("already"):
                    print(f"{r['model']:<10} already {r['to']}; left as it is")
                    continue
                print(
                    f"{r['model']:<10} {r['from']} -> {r['to']}: test {r['test_acc_before']:.4f} -> "
                    f"{r['test_acc_after']:.4f}, weights {r['bytes_before'] / 1e6:.2f} -> "
                    f"{r['bytes_after'] / 1e6:.2f} MB, "
                    + ("kept" if r["kept"] else "not kept (off by more than 0.05 points)")
                )
            return 0
        if ns.write_gallery:
            print(f"gallery features written for: {', '.join(write_galleries(cfg))}")
            return 0
        if ns.search:
            from fmnist.search import SearchConfig, run_search

            result = run_search(
                cfg,
                SearchConfig(
                    model=ns.search,
                    trials=ns.trials,
                    timeout_s=ns.timeout,
                    storage=ns.storage,
                    folder=Path(ns.search_dir) / ns.search,
                ),
            )
            print(result.summary())
            return 0
        if ns.baselines:
            from fmnist.baselines import run_baselines
            from fmnist.checkpoint import atomic_write_json
            from fmnist.data import load_splits

            rows = run_baselines(
                load_splits(cfg.data_dir, cfg.val_size, cfg.seed, cfg.limit, dataset=cfg.dataset), cfg.seed
            )
            atomic_write_json(out / "baselines.json", rows)
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
    refused = [r["refused"] for r in rows if "refused" in r]
    rows = [r for r in rows if "refused" not in r]
    if rows:
        print(
            f"\nResults of this run (test set, temperature-calibrated probabilities), in {out}/:\n"
            + format_table(rows, RESULT_COLUMNS)
        )
    print_overview(out)
    print(f"model card: {out / 'README.md'}")
    if refused:
        print("\n".join(f"error: {r}" for r in refused), file=sys.stderr)
        return 2
    if ns.push:
        return push(out, ns.repo_id)
    return 0


def speedrun(cfg: TrainConfig, ns: argparse.Namespace, argv: list[str] | None) -> int:
    from fmnist import speedrun as sr
    from fmnist.runs import resolve_device

    explicit = _explicit_flags(build_parser(), argv)
    preset = sr.from_flags(cfg, explicit, ns.runs)
    out = Path(ns.speedrun_out or Path("benchmarks/results") / f"speedrun-{resolve_device(cfg.device).type}.json")
    command = "python train.py " + " ".join(sys.argv[1:] if argv is None else argv)
    result = sr.run(preset, out, command, cfg.data_dir)
    print(sr.format_runs(result))
    print(f"({out})")
    return 0


def print_overview(out: Path) -> None:
    """One table of every network and baseline recorded in out/: test accuracy and time to train."""
    rows = []
    for r in json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else []:
        rows.append(
            {
                "model": r["model"],
                "kind": "network",
                "test_acc": r["test_acc"],
                "train_s": r["s_per_epoch"] * r["epochs"],
            }
        )
    for r in json.loads((out / "baselines.json").read_text()) if (out / "baselines.json").is_file() else []:
        rows.append(
            {"model": r["model"], "kind": "scikit-learn", "test_acc": r["test_acc"], "train_s": r["fit_seconds"]}
        )
    if rows:
        rows.sort(key=lambda r: -r["test_acc"])
        print(
            f"\nAll models in {out}/ (test accuracy; training or fit time):\n"
            + format_table(
                rows,
                [
                    ("model", "model", ""),
                    ("kind", "kind", ""),
                    ("test_acc", "test acc", ".4f"),
                    ("train_s", "train s", ".0f"),
                ],
            )
        )


def push(folder: Path, repo_id: str | None) -> int:
    from fmnist.hub import (
        CARD_NAME,
        CheckpointError,
        PushError,
        push_to_hub,
        write_model_card,
    )

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
