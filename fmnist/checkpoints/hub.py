"""The Hugging Face Hub: push checkpoint folders in one commit, pull them back, and write the model card.

Layered like timm's `_hub.py`: the folder format lives in `fmnist.checkpoints.store` and works offline;
`push_to_hub` uploads such folders in one commit; `load_pretrained` rebuilds a model from a folder or a
Hub repo id and never guesses. One model repo holds every model, each in its own subfolder, and a model
card at its root.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from fmnist import publish
from fmnist.checkpoints.store import (
    METRICS_NAME,
    RESULTS_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    atomic_write_bytes,
    load_folder,
    model_folders,
    read_config,
)
from fmnist.models.registry import FashionModel
from fmnist.serving.gallery import GALLERY_NAME
from fmnist.training.config import command_for

log = logging.getLogger(__name__)

DEFAULT_REPO_ENV = "FMNIST_HUB_REPO"
CARD_NAME = "README.md"
UPLOAD_SUFFIXES = (".safetensors", ".json", ".png", ".md")
DATASET_IDS = {"fashion-mnist": "zalando-datasets/fashion_mnist", "mnist": "ylecun/mnist"}
DATASET_ID = DATASET_IDS["fashion-mnist"]


class PushError(RuntimeError):
    """The upload did not happen; the local folder is untouched and the push can be retried."""


def upload_plan(root: str | Path) -> list[tuple[str, Path]]:
    """(path in repo, local path) for every file a push sends: the card and each model's folder, no
    training state, temporary or pickled files."""
    root = Path(root)
    plan = [(CARD_NAME, root / CARD_NAME)] if (root / CARD_NAME).is_file() else []
    for folder in model_folders(root):
        for f in sorted(folder.iterdir()):
            if f.is_file() and f.suffix in UPLOAD_SUFFIXES and not f.name.endswith(".tmp"):
                plan.append((f"{folder.name}/{f.name}", f))
    for extra in (RESULTS_NAME, "baselines.json", GALLERY_NAME):
        if (root / extra).is_file():
            plan.append((extra, root / extra))
    return plan


def push_to_hub(
    root: str | Path,
    repo_id: str | None = None,
    token: str | None = None,
    api=None,
    private: bool = False,
    commit_message: str = "Upload fmnist checkpoints",
) -> str:
    """Upload the checkpoints folder (as save_pretrained and write_model_card left it) in one commit.

    The token comes from the argument, $HF_TOKEN or `hf auth login`, and appears in no message.
    Returns the repo URL. Raises PushError, leaving every local file as it was."""
    hf = publish.hub()
    root = Path(root)
    repo_id = repo_id or os.environ.get(DEFAULT_REPO_ENV)
    if not repo_id:
        raise PushError(f"no repo id: pass --repo-id USER/NAME or set {DEFAULT_REPO_ENV}")
    plan = upload_plan(root)
    if not any(path.endswith(WEIGHTS_NAME) for path, _ in plan):
        raise PushError(f"{root} holds no checkpoint to push (train first, or point --out at one)")
    again = f"push again (python -m fmnist.checkpoints push --out {root})"
    api, token = publish.client(token, api, PushError, again)
    retry = f"retry with: python -m fmnist.checkpoints push --out {root} --repo-id {repo_id}"
    with publish.told(PushError, f"pushing {root} to {repo_id}", token, retry):
        url = api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        ops = [hf.CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(local)) for path, local in plan]
        api.create_commit(repo_id, ops, commit_message=commit_message, repo_type="model")
    log.info("pushed %d files to %s in one commit", len(plan), repo_id)
    return str(url)


def checkpoint_folder(source: str | Path, model_name: str | None = None, revision: str | None = None) -> Path:
    """A local checkpoints folder as it is, or a Hub repo id's snapshot through snapshot_download (which
    honours HF_HUB_OFFLINE and the local cache); with model_name, only that model's subfolder is fetched."""
    local = Path(source)
    if local.is_dir():
        return local
    hf = publish.hub()
    what = f"{model_name} from the Hub repo {source}" if model_name else f"the Hub repo {source}"
    try:
        return Path(
            hf.snapshot_download(
                str(source),
                repo_type="model",
                revision=revision,
                allow_patterns=[f"{model_name}/*"] if model_name else None,
            )
        )
    except Exception as e:  # offline with no cache, unknown repo, network down
        raise CheckpointError(f"cannot get {what}: {type(e).__name__}: {e}") from e


def load_pretrained(
    source: str | Path, model_name: str, device: str | torch.device = "cpu", revision: str | None = None
) -> tuple[FashionModel, dict]:
    """Load `model_name` from a local checkpoints folder or a Hub repo id."""
    return load_folder(checkpoint_folder(source, model_name, revision) / model_name, device)


# ---------------------------------------------------------------------------------------------------
# The model card


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def checkpoint_entries(root: str | Path) -> list[tuple[str, dict, dict]]:
    """(name, config, metrics) of every checkpoint under root, best test accuracy first."""
    entries = [(f.name, read_config(f), json.loads((f / METRICS_NAME).read_text())) for f in model_folders(root)]
    if not entries:
        raise CheckpointError(f"{root} holds no checkpoints with metrics to describe")
    return entries


def results_table(entries: list[tuple[str, dict, dict]]) -> str:
    """The Markdown results table that the model card and the app's About tab show."""
    rows = [
        "| model | initialised from | test accuracy | macro F1 | MCC | log loss | ECE | epochs (best) | "
        "train time | hardware | parameters |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, cfg, met in entries:
        t = met["test"]
        rows.append(
            f"| `{name}` | {cfg['initialization']} | {_pct(t['accuracy'])} | {t['macro_avg']['f1-score']:.4f} "
            f"| {t['mcc']:.4f} | {t['log_loss']:.4f} | {t['ece']:.4f} | {met['epochs_run']} "
            f"({met['best_epoch']}) | {met['train_seconds'] / 60:.1f} min | {cfg['device']} "
            f"| {cfg['parameters']:,} |"
        )
    return "\n".join(rows)


def model_card(root: str | Path, repo_id: str | None = None):
    """Build the repo's model card (a huggingface_hub ModelCard) from the checkpoints' own files."""
    hf = publish.hub()
    repo_id = repo_id or os.environ.get(DEFAULT_REPO_ENV) or "USER/fmnist"
    entries = checkpoint_entries(root)
    datasets = {cfg.get("dataset", "fashion-mnist") for _, cfg, _ in entries}
    if len(datasets) > 1:
        raise CheckpointError(
            f"{root} mixes models of several data sets ({', '.join(sorted(datasets))}); one card describes one data set"
        )
    dataset = datasets.pop()
    dataset_id, dataset_name = DATASET_IDS[dataset], {"mnist": "MNIST"}.get(dataset, "Fashion-MNIST")

    eval_results = [
        hf.EvalResult(
            task_type="image-classification",
            task_name="Image Classification",
            dataset_type=dataset_id,
            dataset_name=dataset_name,
            dataset_split="test",
            metric_type="accuracy",
            metric_name=f"{name} test accuracy",
            metric_value=round(met["test"]["accuracy"], 4),
        )
        for name, _, met in entries
    ]
    data = hf.ModelCardData(
        library_name="pytorch",
        pipeline_tag="image-classification",
        license="mit",
        datasets=[dataset_id],
        metrics=["accuracy", "f1", "matthews_correlation"],
        model_name="fmnist",
        tags=["image-classification", dataset, "pytorch", "timm", "safetensors", "grad-cam"],
        eval_results=eval_results,
    )

    best = entries[0][0]
    class_names = entries[0][1]["class_names"]
    per_class = ["| class | " + " | ".join(f"`{n}` F1" for n, _, _ in entries) + " |", "|---|" + "---|" * len(entries)]
    for c in class_names:
        per_class.append(
            f"| {c} | " + " | ".join(f"{m['test']['per_class'][c]['f1-score']:.3f}" for _, _, m in entries) + " |"
        )

    def _converted(met):
        c = met.get("converted")
        return (
            ""
            if not c
            else (
                f"; weights then stored in {c['to']} by `python -m fmnist.checkpoints convert "
                f"--dtype {c['to']}` (test accuracy in {c['from']}: "
                f"{100 * c['test_accuracy_before']:.2f} %)"
            )
        )

    def launcher(cfg):
        world = cfg.get("world_size", 1)
        return "" if world == 1 else f"torchrun --nproc_per_node={world} "

    def _finetuned(cfg):
        f = cfg.get("finetune")
        return (
            ""
            if not f
            else (
                f"; fine-tuned from `{f['from']}` on the dataset `{f['dataset']}` ({f['trained_on']} checked pictures,"
                f" {f['held_out']} held out: {100 * f['before']['held_out']:.1f} % -> "
                f"{100 * f['after']['held_out']:.1f} % on them, data-set test {100 * f['before']['test']:.2f} % -> "
                f"{100 * f['after']['test']:.2f} %)"
            )
        )

    trained = "\n".join(
        f"- `{name}`: `{launcher(cfg)}"
        f"{cfg['command'] if cfg.get('finetune') else command_for(cfg['train_config'], name)}` (seed {cfg['seed']}, "
        f"{cfg['device']}, {met['train_seconds'] / 60:.1f} min, {met['epochs_run']} epochs, "
        f"{met['split']['train']:,} training images"
        f"{', stopped early' if met['stopped_early'] else ''})" + _converted(met) + _finetuned(cfg)
        for name, cfg, met in entries
    )
    n_test = entries[0][2]["test"]["n"]
    from fmnist.models.registry import REGISTRY

    short = [
        f"- `{name}` was trained for {met['epochs_run']} epochs, fewer than its default of "
        f"{REGISTRY[name][1]['epochs']}, to fit a time budget on {cfg['device']}; it is not at its best accuracy."
        for name, cfg, met in entries
        if name in REGISTRY and not met["stopped_early"] and met["epochs_run"] < REGISTRY[name][1]["epochs"]
    ]
    init_lines = "\n".join(f"- `{name}`: {cfg['initialization']}." for name, cfg, _ in entries)
    # runs tracked with trackio and synced to a Space (train.py --track --track-space USER/NAME) are linked
    synced = [(name, cfg["tracking"]) for name, cfg, _ in entries if (cfg.get("tracking") or {}).get("space")]
    if synced:
        trained += "\n\nTraining curves, tracked with trackio:\n" + "\n".join(
            f"- `{name}`: run `{t['run']}` of project `{t['project']}` in the Space "
            f"[{t['space']}](https://huggingface.co/spaces/{t['space']})"
            for name, t in synced
        )
    body = f"""
# fmnist: {dataset_name} classifiers

{len(entries)} PyTorch classifiers for {dataset_name} ({
        "28x28 grey images of 10 garment classes, https://github.com/zalandoresearch/fashion-mnist"
        if dataset == "fashion-mnist"
        else "28x28 handwritten digits"
    }),
trained with the fmnist project's `train.py` on the data set `{dataset}`. Each model lives in its
own subfolder: `model.safetensors` (weights), `config.json` (architecture, arguments, classes, normalisation,
calibration temperature, notice thresholds, seed, library versions, git commit), `detector.safetensors`
(the class means and precision matrix of the not-a-garment detector), `gallery_features.safetensors` (its
features of the similar-items gallery, `gallery.safetensors`: 10,000 training images), `metrics.json` and plots.

## Results ({dataset_name} test set, {n_test:,} images)

Each model's epoch is chosen by validation loss on images held out of the 60,000 training images; the
test set is used only for this table. Probabilities are temperature-calibrated on the validation split (ECE after
calibration shown).

{results_table(entries)}

Per-class F1:

{chr(10).join(per_class)}

Confusion matrix of `{best}`:

![confusion matrix]({best}/confusion_matrix.png)

## How to use

```python
from fmnist.checkpoints.hub import load_pretrained
model, config = load_pretrained("{repo_id}", "{best}")  # any subfolder name
probs = (model(images) / config["temperature"]).softmax(-1)  # images: (B, 1, 28, 28) floats in [0, 1]
```

## How they were trained

{trained}

## Limitations

What each model was initialised from:

{init_lines}
{chr(10).join(short)}

- The models expect 28x28 grayscale items like the data set's: a single product, centred, light on a black
  background. A photo must be turned into that first (fmnist's `preprocess` does it: grayscale, inversion of
  light backgrounds, crop, pad, resize); anything else (several items, people wearing clothes, scenes) is
  outside what they were trained on. The app shows a notice when the picture looks unlike every garment to
  the model (the Mahalanobis distance of its penultimate features to every class, a head that learnt
  garments against pictures of things that are not garments, and one that learnt them against photographed
  handwritten digits; each limit set on validation pictures), or when
  the picture itself says so: no item, an item that fills the frame, a shape no garment has, a busy picture,
  a small thing at the edge, a thing mostly outside the picture, a thing across the picture, or several items.
- Shirt, T-shirt/top, Pullover and Coat are the classes most often confused.
"""
    return hf.ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def write_model_card(root: str | Path, repo_id: str | None = None) -> Path:
    card = model_card(root, repo_id)
    path = Path(root) / CARD_NAME
    atomic_write_bytes(path, str(card).encode())
    return path
