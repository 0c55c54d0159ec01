"""Where a model's weights start from: random initialisation, or (the MobileNet) ImageNet weights from a local
file, the local Hugging Face cache or one download; resolved before any training, with advice when they
cannot be had."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

from fmnist.data import DATASETS
from fmnist.models.registry import build_model
from fmnist.training.config import TrainConfig


class PretrainedUnavailable(RuntimeError):
    """ImageNet weights for the transfer model could not be had."""


MOBILENET_HUB_FILE = "model.safetensors"


def _hub_reachable(timeout_s: float = 5.0) -> bool:
    """One TCP connection to the Hub's host: a quick answer, where huggingface_hub would retry for ~50 s."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout_s).close()
        return True
    except OSError:
        return False


def resolve_mobilenet_weights(cfg: TrainConfig) -> tuple[str | None, str]:
    """Where the MobileNet's weights start from (None or a local file) and how its card describes that.

    Called before any training: ImageNet weights come from --pretrained-file, from the local Hugging Face
    cache, or from one download when the Hub answers; otherwise the run stops at once with advice."""
    if cfg.pretrained_file:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            load_file(cfg.pretrained_file)
        except (SafetensorError, OSError) as e:
            raise PretrainedUnavailable(
                f"--pretrained-file {cfg.pretrained_file} cannot be read as safetensors weights ({e})"
            ) from None
        return cfg.pretrained_file, f"ImageNet weights from the local file {Path(cfg.pretrained_file).name}"
    if cfg.no_pretrained:
        return None, "random initialisation (--no-pretrained): NOT a transfer model, no ImageNet weights"
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from timm.models import get_pretrained_cfg

    variant = cfg.model_args.get("mobilenet", {}).get("variant", "mobilenetv3_small_100")
    repo = get_pretrained_cfg(variant).hf_hub_id
    described = f"ImageNet weights from the Hugging Face Hub ({repo})"
    cached = try_to_load_from_cache(repo, MOBILENET_HUB_FILE)
    if isinstance(cached, str):
        return cached, described
    advice = (
        "Give a local weights file with --pretrained-file PATH, or train from random initialisation with "
        "--no-pretrained (the model is then labelled as not pretrained everywhere)."
    )
    if not _hub_reachable():
        raise PretrainedUnavailable(
            f"ImageNet weights for the MobileNet ({repo}) are not in the local Hugging Face "
            f"cache and the Hub cannot be reached.\n{advice}"
        )
    try:
        return hf_hub_download(repo, MOBILENET_HUB_FILE), described
    except Exception as e:  # httpx errors, HfHubHTTPError, OSError
        raise PretrainedUnavailable(
            f"ImageNet weights for the MobileNet ({repo}) could not be downloaded ({type(e).__name__}: {e}).\n{advice}"
        ) from e


def make_model(
    name: str, cfg: TrainConfig, mobilenet_weights: tuple[str | None, str] | None = None
) -> tuple[torch.nn.Module, dict, str]:
    """The model, the arguments that rebuild it, and a description of its initialisation."""
    args = dict(cfg.model_args.get(name, {}))
    spec = DATASETS[cfg.dataset]
    if cfg.dataset != "fashion-mnist":  # the model normalises inside: it must know this data set's statistics
        args |= {"mean": spec.mean, "std": spec.std}
    if name != "mobilenet":
        return build_model(name, **args), args, "random initialisation (trained from scratch)"
    source, description = mobilenet_weights or resolve_mobilenet_weights(cfg)
    return build_model(name, pretrained=source, **args), args, description
