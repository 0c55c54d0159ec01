"""The model registry. Every model takes (B, 1, 28, 28) pixels in [0, 1], normalises them itself,
returns (B, 10) logits, and names the layer Grad-CAM should use in `gradcam_layer`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch.nn.functional as F
from torch import nn

from fmnist import NUM_CLASSES
from fmnist.data import PIXEL_MEAN, PIXEL_STD

log = logging.getLogger(__name__)


class Normalize(nn.Module):
    def __init__(self, mean: float, std: float):
        super().__init__()
        self.mean, self.std = float(mean), float(std)

    def forward(self, x):
        return (x - self.mean) / self.std


class FashionModel(nn.Module):
    """Base: `features` ends at the Grad-CAM layer's output; `head` turns it into logits."""

    gradcam_layer: str = "features"

    def __init__(self, mean: float = PIXEL_MEAN, std: float = PIXEL_STD):
        super().__init__()
        self.normalize = Normalize(mean, std)

    def forward(self, x):
        return self.head(self.features(self.normalize(x)))

    def penultimate(self, x):
        """(B, D) features that enter the last linear layer: what the not-a-garment detector measures."""
        return self.head[:-1](self.features(self.normalize(x)))

    def classify_features(self, feats):
        return self.head[-1](feats)


class MLP(FashionModel):
    """Seed 001's ANN: Flatten -> 128 -> 64 -> 10 (109,386 parameters).

    It has no spatial map, so its Grad-CAM layer is the input itself (an identity), where the map is
    the gradient-weighted image."""

    gradcam_layer = "features"

    def __init__(self, hidden=(128, 64), dropout: float = 0.0, **norm):
        super().__init__(**norm)
        self.features = nn.Identity()  # (B, 1, 28, 28)
        layers, width = [nn.Flatten()], 28 * 28
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = h
        self.head = nn.Sequential(*layers, nn.Linear(width, NUM_CLASSES))


class BasicCNN(FashionModel):
    """Seed 003's model: Conv(32, 3x3) -> MaxPool -> Dense(32) -> 10, with dropout (173,738 parameters).

    One dropout, on the pooled features: a second one on the 32-unit layer starved this small model
    (87 % validation accuracy at epoch 9 of a first run)."""

    def __init__(self, channels: int = 32, hidden: int = 32, dropout: float = 0.25, **norm):
        super().__init__(**norm)
        self.features = nn.Sequential(nn.Conv2d(1, channels, 3), nn.ReLU(inplace=True))  # (B, 32, 26, 26)
        self.head = nn.Sequential(
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels * 13 * 13, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, NUM_CLASSES),
        )


def _conv_bn(cin, cout, k):
    # Keras-style "same" padding, the extra pixel of an even kernel going to the bottom/right
    pad = nn.ZeroPad2d(((k - 1) // 2, k // 2, (k - 1) // 2, k // 2))
    return [pad, nn.Conv2d(cin, cout, k, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class DeepCNN(FashionModel):
    """Seed 004's model: Conv 32 (4x4) / 64 / 128 with BatchNorm, Dense 128 + BatchNorm + Dropout 0.35."""

    def __init__(self, widths=(32, 64, 128), hidden: int = 128, dropout: float = 0.35, **norm):
        super().__init__(**norm)
        a, b, c = widths
        self.features = nn.Sequential(
            *_conv_bn(1, a, 4),
            nn.MaxPool2d(2),
            *_conv_bn(a, b, 3),
            nn.MaxPool2d(2),
            *_conv_bn(b, c, 3),
        )  # (B, 128, 7, 7)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c * 7 * 7, hidden, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, NUM_CLASSES),
        )


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x), inplace=True)


class ResNet(FashionModel):
    """A small pre-activation-free ResNet for 28x28: stem, three stages (28, 14, 7 px), global pool."""

    def __init__(self, widths=(32, 64, 128), blocks=(2, 2, 2), dropout: float = 0.0, **norm):
        super().__init__(**norm)
        layers = [nn.Conv2d(1, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
        cin = widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                layers.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.features = nn.Sequential(*layers)  # (B, widths[-1], 7, 7)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, NUM_CLASSES)
        )


class WideBlock(nn.Module):
    """A pre-activation residual block (Zagoruyko & Komodakis 2016): BN-ReLU-conv twice, dropout between."""

    def __init__(self, cin, cout, stride, dropout: float):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(cin), nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.shortcut = None if stride == 1 and cin == cout else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x):
        out = F.relu(self.bn1(x), inplace=False)
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.dropout(F.relu(self.bn2(out), inplace=True)))
        return out + skip


class WideResNet(FashionModel):
    """WRN-depth-k for 28x28: a 16-channel stem, three groups of (depth - 4) / 6 wide blocks at 28, 14 and 7 px
    (16k, 32k, 64k channels), BN-ReLU, global pool. WRN-16-4 (the default) has 2.7 M parameters: 5.5 MB in
    float16, under the 10 MB a bundled checkpoint may take. Zalando's table lists WRN-28-10 with random erasing
    at 96.3 %; this smaller one fits the size limit and a few minutes of training on one GPU."""

    def __init__(self, depth: int = 16, widen: int = 4, dropout: float = 0.0, **norm):
        super().__init__(**norm)
        if (depth - 4) % 6 or depth < 10:
            raise ValueError(f"WRN depth must be 6n + 4 (10, 16, 22, 28, ...), got {depth}")
        n = (depth - 4) // 6
        widths = (16 * widen, 32 * widen, 64 * widen)
        layers, cin = [nn.Conv2d(1, 16, 3, 1, 1, bias=False)], 16
        for i, w in enumerate(widths):
            for j in range(n):
                layers.append(WideBlock(cin, w, 2 if (i > 0 and j == 0) else 1, dropout))
                cin = w
        layers += [nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)  # (B, 64k, 7, 7)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, NUM_CLASSES))


class MobileNet(FashionModel):
    """A timm MobileNetV3 with one input channel; the 28x28 input is upsampled to `img_size` inside
    the model so that the last feature map is larger than 1x1 (the network downsamples by 32).

    `pretrained` is where the starting weights come from: None (random init), "hub" (timm's ImageNet
    weights from the Hugging Face Hub) or the path of a local weights file. It is not a model
    argument that the checkpoint stores: a rebuilt model gets its weights from the checkpoint.
    """

    gradcam_layer = "body.blocks.5"  # reset below to the last block before pooling

    def __init__(
        self, variant: str = "mobilenetv3_small_100", img_size: int = 64, pretrained: str | None = None, **norm
    ):
        super().__init__(**norm)
        import timm

        if img_size < 64:
            raise ValueError(f"img_size {img_size} gives a 1x1 last feature map; use 64 or more")
        self.img_size = img_size
        kwargs = dict(in_chans=1, num_classes=NUM_CLASSES)
        if pretrained == "hub":
            kwargs.update(pretrained=True)
        elif pretrained:
            if not Path(pretrained).is_file():
                raise FileNotFoundError(f"pretrained weights file {pretrained} does not exist")
            kwargs.update(pretrained=True, pretrained_cfg_overlay=dict(file=str(pretrained)))
        self.body = timm.create_model(variant, **kwargs)
        # the last block before pooling: MobileNetV3's conv_head runs after global pooling
        self.gradcam_layer = f"body.blocks.{len(self.body.blocks) - 1}"

    def features(self, x):
        x = F.interpolate(x, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
        return self.body.forward_features(x)

    def head(self, feats):
        return self.body.forward_head(feats)

    def penultimate(self, x):
        return self.body.forward_head(self.features(self.normalize(x)), pre_logits=True)

    def classify_features(self, feats):
        return self.body.get_classifier()(feats)


# Augmentation defaults per model, each chosen on validation accuracy (docs/training.md, "Augmentation per
# model"): shifts and flips cost the two small models accuracy; rotation and zoom on top cost deep_cnn, and the
# photo pipeline undoes tilts instead (fmnist.photo).
NO_AUGMENT = dict(
    shift_px=0,
    hflip=False,
    rotate_deg=0.0,
    zoom=0.0,
    erase_p=0.0,
    photo_p=0.0,
    print_p=0.0,
)
SHIFT_FLIP = NO_AUGMENT | dict(shift_px=2, hflip=True)
# - the degradations a photo's preprocessing leaves (fmnist.training.augment.photo_degrade), on half the images,
#   for the two models the app leans on (docs/training.md, "Training for photos")
SHIFT_FLIP_PHOTO = SHIFT_FLIP | dict(photo_p=0.5)


def common_search_space(trial) -> dict:
    """Training settings every model's search explores (an Optuna trial's suggestions)."""
    return {
        "lr": trial.suggest_float("lr", 3e-4, 1e-2, log=True),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-2, log=True),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.2),
        "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256, 512]),
        "shift_px": trial.suggest_int("shift_px", 0, 3),
        "hflip": trial.suggest_categorical("hflip", [False, True]),
        "rotate_deg": trial.suggest_float("rotate_deg", 0.0, 20.0),
        "zoom": trial.suggest_float("zoom", 0.0, 0.2),
        "erase_p": trial.suggest_float("erase_p", 0.0, 0.5),
    }


def _mlp_space(trial) -> dict:
    width = trial.suggest_categorical("hidden_1", [64, 128, 256, 512])
    return {
        "hidden": [width, trial.suggest_categorical("hidden_2", [32, 64, 128])],
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }


def _basic_cnn_space(trial) -> dict:
    return {
        "channels": trial.suggest_categorical("channels", [16, 32, 64]),
        "hidden": trial.suggest_categorical("hidden", [32, 64, 128]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }


def _deep_cnn_space(trial) -> dict:
    base = trial.suggest_categorical("base_width", [16, 32, 48])
    return {
        "widths": [base, 2 * base, 4 * base],
        "hidden": trial.suggest_categorical("hidden", [64, 128, 256]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
    }


def _resnet_space(trial) -> dict:
    base = trial.suggest_categorical("base_width", [16, 32, 64])
    return {"widths": [base, 2 * base, 4 * base], "dropout": trial.suggest_float("dropout", 0.0, 0.3)}


def _wide_resnet_space(trial) -> dict:
    return {
        "depth": trial.suggest_categorical("depth", [10, 16]),
        "widen": trial.suggest_categorical("widen", [2, 4]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.3),
    }


def _mobilenet_space(trial) -> dict:
    return {"img_size": trial.suggest_categorical("img_size", [64, 96])}


# name -> (constructor, default training settings, search space for python -m fmnist.training.search); a search space
# returns the model's constructor arguments, and common_search_space the training settings
REGISTRY: dict[str, tuple[Callable[..., FashionModel], dict, Callable]] = {
    "mlp": (MLP, dict(epochs=20, lr=2e-3, augment=NO_AUGMENT), _mlp_space),
    "basic_cnn": (BasicCNN, dict(epochs=20, lr=2e-3, augment=NO_AUGMENT), _basic_cnn_space),
    "deep_cnn": (DeepCNN, dict(epochs=20, lr=2e-3, augment=SHIFT_FLIP_PHOTO), _deep_cnn_space),
    "resnet": (ResNet, dict(epochs=30, lr=3e-3, augment=SHIFT_FLIP_PHOTO), _resnet_space),
    "mobilenet": (MobileNet, dict(epochs=15, lr=2e-3, augment=SHIFT_FLIP), _mobilenet_space),
    # the best model, for a GPU (fmnist.gpu.plan): Zalando's table has wide residual networks with random
    # erasing at the top; no figure of this one is recorded yet (docs/gpu.md)
    "wide_resnet": (
        WideResNet,
        dict(epochs=60, lr=3e-3, augment=SHIFT_FLIP_PHOTO | dict(erase_p=0.25)),
        _wide_resnet_space,
    ),
}
MODEL_NAMES = tuple(REGISTRY)
# what a plain `python train.py` trains and checkpoints/ bundles; the wide resnet is named explicitly (on a CPU
# an epoch of it takes about half an hour)
DEFAULT_MODELS = ("mlp", "basic_cnn", "deep_cnn", "resnet", "mobilenet")


def build_model(name: str, **kwargs) -> FashionModel:
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
    return REGISTRY[name][0](**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
