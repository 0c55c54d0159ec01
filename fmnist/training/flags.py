"""The training flags, shared by the commands that train: `python train.py`, the search
(`python -m fmnist.training.search`) and the speedrun (`python -m fmnist.training.speedrun`). Each flag is the
TrainConfig field of the same name; the settings the shipped recipe never changes (optimizer, schedule, weight
decay, label smoothing, patience, validation size, rotation and zoom) are TrainConfig fields without a flag, set
with --params.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
from pathlib import Path

from fmnist.models.registry import MODEL_NAMES, REGISTRY
from fmnist.training.config import TrainConfig, apply_params


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def nonnegative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def model_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODEL_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODEL_NAMES)}"
        )
    return names


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON: {e}") from None
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise argparse.ArgumentTypeError('expected {"model": {"arg": value}}, e.g. {"mobilenet": {"img_size": 96}}')
    return value


def recipe_epilog() -> str:
    """The shipped recipe, as --help shows it: what every model shares, then each model's own defaults."""
    d = TrainConfig()
    lines = [
        "the shipped recipe (what a flag left out gives):",
        f"  every model: {d.optimizer}, {d.schedule} schedule, weight decay {d.weight_decay:g}, label smoothing "
        f"{d.label_smoothing:g},",
        f"  batch {d.batch_size}, early stopping after {d.patience} epochs without a better validation loss, seed "
        f"{d.seed}, {d.val_size:,} of the",
        "  60,000 training images held out for validation (change the ones without a flag with --params)",
    ]
    for name, (_, own, _) in REGISTRY.items():
        aug = own["augment"]
        kept = [f"shift {aug['shift_px']} px" if aug["shift_px"] else "", "flips" if aug["hflip"] else ""]
        kept += [f"--{k.replace('_', '-')} {aug[k]:g}" for k in ("photo_p", "print_p", "erase_p") if aug[k]]
        augment = ", ".join(k for k in kept if k) or "no augmentation"
        lines.append(f"  {name:<12} {own['epochs']} epochs, lr {own['lr']:g}, {augment}")
    lines.append(
        "  the photo recipe (deep_cnn, resnet) adds --print-p 0.25 --photo-data data/photo-data-v6.npz "
        "--photo-share 0.25 (docs/training.md)"
    )
    return "\n".join(lines)


def add_recipe_flags(p: argparse.ArgumentParser, models: bool = True) -> None:
    """The flags of one training run, in groups."""
    d = TrainConfig()
    what = p.add_argument_group("what to train, and where")
    if models:
        what.add_argument(
            "--models", type=model_list, default=None, help=f"comma-separated, from {','.join(MODEL_NAMES)} (all)"
        )
    what.add_argument(
        "--dataset",
        choices=["fashion-mnist", "mnist"],
        default=d.dataset,
        help="the IDX data set (default: %(default)s; the app serves Fashion-MNIST only)",
    )
    what.add_argument(
        "--out", help="output folder (default: runs/<dataset>/); the bundled checkpoints/ only when named"
    )
    what.add_argument("--resume", action="store_true", help="continue interrupted runs from their last epoch")
    what.add_argument(
        "--force",
        action="store_true",
        help="with --out checkpoints: replace a bundled model by a short run, or by one worse on validation",
    )
    recipe = p.add_argument_group("the recipe (default: each model's own, listed below)")
    recipe.add_argument("--epochs", type=positive_int, help="epochs")
    recipe.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="(default: %(default)s)")
    recipe.add_argument("--lr", type=positive_float, help="peak learning rate")
    recipe.add_argument("--seed", type=int, default=d.seed, help="(default: %(default)s)")
    recipe.add_argument(
        "--limit", type=positive_int, help="a quick run on N training images (N/4 for validation and test)"
    )
    recipe.add_argument(
        "--params",
        metavar="FILE|JSON",
        help="more TrainConfig fields: a search's best.json, or JSON such as '{\"patience\": 10}'; flags win",
    )
    aug = p.add_argument_group("augmentation (default: each model's own)")
    aug.add_argument("--shift-px", type=int, help="random shift in pixels, 0 = off")
    aug.add_argument("--hflip", action=argparse.BooleanOptionalAction, help="random horizontal flips")
    aug.add_argument("--erase-p", type=float, help="random erasing probability, 0 = off")
    aug.add_argument("--photo-p", type=float, help="chance of the degradations a photo's preprocessing leaves")
    aug.add_argument("--print-p", type=float, help="chance of a print (stripes, checks, dots, motifs) on the item")
    aug.add_argument("--photo-data", metavar="PATH", help="rendered training photos (python -m fmnist.photo.build)")
    aug.add_argument(
        "--photo-share",
        type=nonnegative_float,
        default=d.photo_share,
        help="chance of a training image swapped for a picture of --photo-data (default: %(default)s)",
    )
    model = p.add_argument_group("the model")
    model.add_argument("--model-args", type=json_object, default={}, help='JSON: \'{"mobilenet": {"img_size": 96}}\'')
    model.add_argument("--pretrained-file", help="local ImageNet weights for the MobileNet (a timm state dict)")
    model.add_argument(
        "--no-pretrained", action="store_true", help="the MobileNet from random init (then not a transfer model)"
    )
    model.add_argument(
        "--weights-dtype",
        choices=["float32", "float16", "bfloat16"],
        default=d.weights_dtype,
        help="how the weights are stored (default: %(default)s)",
    )
    machine = p.add_argument_group("the machine")
    machine.add_argument("--data-dir", help="the folder of the data set's four .gz files")
    machine.add_argument("--device", default=d.device, help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    machine.add_argument("--compile", action="store_true", help="torch.compile the model for training")
    track = p.add_argument_group("experiment tracking (trackio: local SQLite; `trackio show` opens the dashboard)")
    track.add_argument(
        "--track",
        nargs="?",
        const=d.track_project,
        metavar="PROJECT",
        help=f"log each model's run to a trackio project (default project: {d.track_project})",
    )
    track.add_argument("--track-space", metavar="USER/NAME", help="also sync the project to this Space")


def explicit_flags(parser: argparse.ArgumentParser, argv: list[str] | None) -> set[str]:
    """The destinations the user gave on the command line (a parse with every default suppressed)."""
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
    return set(vars(probe.parse_known_args(argv)[0]))


def read_params(text: str) -> dict:
    """--params: a file (a search's best.json, or a JSON object of TrainConfig fields) or that JSON inline."""
    source = text if text.lstrip().startswith("{") else Path(text).read_text()
    params = json.loads(source)
    if not isinstance(params, dict):
        raise ValueError("expected a JSON object")
    if "train_config" not in params:  # plain fields: {"patience": 10}
        fields = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(params) - fields)
        if unknown:
            raise ValueError(f"not TrainConfig fields: {', '.join(unknown)}")
        params = {"train_config": params}
    return params


def config_from(parser: argparse.ArgumentParser, ns: argparse.Namespace, argv: list[str] | None) -> TrainConfig:
    """The TrainConfig of the parsed flags, --params applied under them, validated (errors exit 2)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(ns).items() if k in fields and v is not None}
    if ns.track:
        values |= {"track": True, "track_project": ns.track}
    else:
        values.pop("track", None)
    cfg = TrainConfig(**values)
    if cfg.params:
        try:
            params = read_params(cfg.params)
        except (OSError, ValueError) as e:
            parser.error(f"--params {cfg.params}: {e}")
        cfg = apply_params(cfg, params, explicit_flags(parser, argv))
    try:
        cfg.validate()
    except ValueError as e:
        parser.error(str(e))
    return cfg
