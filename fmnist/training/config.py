"""The one typed training config (its fields are train.py's flags) and the command that reproduces a run.

Kept apart from the trainer and the Hub code so that both can read it without importing each other.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from fmnist.data import DATASETS
from fmnist.models.registry import DEFAULT_MODELS, MODEL_NAMES, REGISTRY
from fmnist.training.augment import AugmentConfig

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("onecycle", "cosine")
AUGMENT_FIELDS = (
    "shift_px",
    "hflip",
    "rotate_deg",
    "zoom",
    "erase_p",
    "photo_p",
    "print_p",
)
RUNS_DIR = "runs"


@dataclass
class TrainConfig:
    """Every field is a train.py flag of the same name (underscores become dashes)."""

    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    dataset: str = "fashion-mnist"
    epochs: int | None = None  # None: each model's default from the registry
    batch_size: int = 256
    lr: float | None = None  # peak learning rate; None: each model's default
    weight_decay: float = 5e-4
    optimizer: str = "adamw"
    schedule: str = "onecycle"
    label_smoothing: float = 0.1
    patience: int = 5  # early stopping: epochs without a better validation loss
    seed: int = 0
    val_size: int = 6000
    limit: int | None = None
    # augmentation: None takes each model's own default from the registry
    shift_px: int | None = None
    hflip: bool | None = None
    rotate_deg: float | None = None
    zoom: float | None = None
    erase_p: float | None = None
    photo_p: float | None = None  # chance of photo-like degradations (fmnist.training.augment.photo_degrade)
    print_p: float | None = None  # chance of a print inside the silhouette (fmnist.training.prints)
    # domain randomisation: a cache of training items rendered as photos and preprocessed (fmnist.photo.cache),
    # swapped in for a share of the training images
    photo_data: str | None = None
    photo_share: float = 0.0
    model_args: dict = field(default_factory=dict)  # {"mobilenet": {"img_size": 96}, ...}
    params: str | None = None  # more fields: a search's best.json or inline JSON, applied under the explicit flags
    pretrained_file: str | None = None
    no_pretrained: bool = False
    out: str | None = None  # None: runs/<dataset>; the bundled checkpoints/ only when named
    data_dir: str | None = None
    device: str = "auto"
    resume: bool = False
    force: bool = False  # replace a bundled model by a short run, or by one worse on validation
    compile: bool = False
    weights_dtype: str = "float32"  # "float16" halves the files; metrics are taken on the saved weights
    track: bool = False  # log to trackio (fmnist.training.tracking): local SQLite, nothing leaves the machine
    track_project: str = "fmnist"
    track_space: str | None = None  # USER/NAME: also sync the tracked project to that Space

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else Path(RUNS_DIR) / self.dataset

    def validate(self) -> None:
        """Raise ValueError with a message a user can act on."""
        unknown = [m for m in self.models if m not in REGISTRY]
        if unknown or not self.models:
            raise ValueError(
                f"--models: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(MODEL_NAMES)}"
            )
        if self.dataset not in DATASETS:
            raise ValueError(f"--dataset must be one of {', '.join(DATASETS)}, got {self.dataset!r}")
        positive = {"batch_size": self.batch_size, "val_size": self.val_size}
        positive |= {
            k: v for k, v in (("epochs", self.epochs), ("lr", self.lr), ("limit", self.limit)) if v is not None
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer (--params) must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule (--params) must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing (--params) must be in [0, 1), got {self.label_smoothing}")
        if self.erase_p is not None and not 0 <= self.erase_p <= 1:
            raise ValueError(f"--erase-p must be in [0, 1], got {self.erase_p}")
        if self.print_p is not None and not 0 <= self.print_p <= 1:
            raise ValueError(f"--print-p must be in [0, 1], got {self.print_p}")
        if self.photo_p is not None and not 0 <= self.photo_p <= 1:
            raise ValueError(f"--photo-p must be in [0, 1], got {self.photo_p}")
        if not 0 <= self.photo_share <= 1:
            raise ValueError(f"--photo-share must be in [0, 1], got {self.photo_share}")
        if self.photo_share > 0 and not self.photo_data:
            raise ValueError(
                "--photo-share mixes in a photo data cache: give --photo-data PATH too "
                "(build one with python -m fmnist.photo.build)"
            )
        if self.zoom is not None and not 0 <= self.zoom < 0.5:
            raise ValueError(f"zoom (--params) must be in [0, 0.5), got {self.zoom}")
        if self.rotate_deg is not None and not 0 <= self.rotate_deg <= 45:
            raise ValueError(f"rotate_deg (--params) must be in [0, 45], got {self.rotate_deg}")
        if self.weight_decay < 0 or self.patience < 1 or (self.shift_px or 0) < 0:
            raise ValueError("weight_decay (--params) and --shift-px must be >= 0, and patience (--params) >= 1")
        if self.weights_dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"--weights-dtype must be float32, float16 or bfloat16, got {self.weights_dtype!r}")
        if self.track_space and not self.track:
            raise ValueError("--track-space syncs a tracked run: give --track too")
        if self.track_space and self.track_space.count("/") != 1:
            raise ValueError(f"--track-space must be USER/NAME, got {self.track_space!r}")
        bad_args = [m for m in self.model_args if m not in REGISTRY]
        if bad_args:
            raise ValueError(f"--model-args names unknown models: {', '.join(bad_args)}")
        if self.pretrained_file and self.no_pretrained:
            raise ValueError("--pretrained-file and --no-pretrained contradict each other: give one")
        if self.pretrained_file and not Path(self.pretrained_file).is_file():
            raise ValueError(f"--pretrained-file {self.pretrained_file} does not exist")
        from fmnist.checkpoints.store import inside_bundled, is_bundled

        if inside_bundled(self.out_dir):  # the app's default weights: replaced only by full, deliberate runs
            if self.limit is not None:
                raise ValueError(
                    f"--limit runs are never written into the bundled checkpoints/ or any folder in "
                    f"it ({self.out_dir}): leave out --out to write into runs/, or name another folder"
                )
            if not is_bundled(self.out_dir):
                raise ValueError(
                    f"--out {self.out_dir} is inside the bundled checkpoints/, whose folders are the "
                    "app's models: write a bundled model with --out checkpoints, or name a folder "
                    "outside it"
                )
            if self.dataset != "fashion-mnist":
                raise ValueError(
                    f"the bundled {self.out_dir}/ holds Fashion-MNIST models only; "
                    f"--dataset {self.dataset} runs go to runs/{self.dataset}/"
                )
            short = [m for m in self.models if self.epochs is not None and self.epochs < REGISTRY[m][1]["epochs"]]
            if short and not self.force:
                raise ValueError(
                    f"--epochs {self.epochs} is shorter than the full run of "
                    + ", ".join(f"{m} ({REGISTRY[m][1]['epochs']} epochs)" for m in short)
                    + ": a bundled model is replaced only by a full run. Leave out --out to write "
                    "into runs/, or give --force to replace it anyway"
                )

    def augment(self, model: str) -> AugmentConfig:
        """The augmentation for one model: its registry defaults, under any flag given."""
        own = REGISTRY[model][1]["augment"]
        return AugmentConfig(**{k: own[k] if getattr(self, k) is None else getattr(self, k) for k in AUGMENT_FIELDS})


def apply_params(cfg: TrainConfig, params: dict, explicit: set[str]) -> TrainConfig:
    """A best.json's settings, under the flags the user gave explicitly (those win)."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    changes = {k: v for k, v in params.get("train_config", {}).items() if k in fields and k not in explicit}
    model = params.get("model")
    if params.get("model_args") and model and "model_args" not in explicit:
        changes["model_args"] = {**cfg.model_args, model: params["model_args"]}
    return dataclasses.replace(cfg, **changes)


# TrainConfig fields that the shipped recipe never changes: no flag of their own, set with --params
PARAMS_ONLY = ("weight_decay", "optimizer", "schedule", "label_smoothing", "patience", "val_size", "rotate_deg", "zoom")


def command_for(train_config: dict, model: str) -> str:
    """The train.py command that reproduces one model's run, from its recorded TrainConfig (the fields without
    a flag as one inline --params, which also stands for a --params file the run read)."""
    defaults = dataclasses.asdict(TrainConfig())
    parts = ["python train.py", f"--models {model}"]
    inline = {}
    for key, value in train_config.items():
        if (
            key in ("models", "data_dir", "device", "resume", "augment", "params")
            or key.startswith("track")
            or value == defaults.get(key)
        ):
            continue
        flag = "--" + key.replace("_", "-")
        if key in PARAMS_ONLY:
            inline[key] = value
        elif key == "hflip":
            parts.append("--hflip" if value else "--no-hflip")
        elif value is True:
            parts.append(flag)
        elif key == "model_args":
            if value.get(model):
                parts.append(f"{flag} '{json.dumps({model: value[model]})}'")
        elif value is not None and value is not False:  # 0 is a value (--shift-px 0), not an absent flag
            parts.append(f"{flag} {value}")
    if inline:
        parts.append(f"--params '{json.dumps(inline)}'")
    epochs, out = train_config.get("epochs"), train_config.get("out")
    if (
        out
        and epochs
        and epochs < REGISTRY[model][1]["epochs"]
        and "--force" not in parts
        and Path(out).name == "checkpoints"
    ):  # a short run into the bundled folder, recorded before --force
        parts.insert(parts.index(f"--out {out}"), "--force")
    return " ".join(parts)
