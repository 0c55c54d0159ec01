"""Predictions for people: top-3 classes with calibrated probabilities, a heat map of what the answer rests on
(fmnist.explain.maps: the method most faithful for the model), the 28x28 input
the model saw, and a notice when a picture does not look like the data set. (Catalogues: fmnist.tag.core, and
its command `python -m fmnist.tag FOLDER`.)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fmnist import CLASS_NAMES
from fmnist.checkpoints import hub, store
from fmnist.explain.gradcam import overlay
from fmnist.explain.maps import explain, map_note, map_title
from fmnist.notice import detector
from fmnist.notice.rules import BUSY_OUTLIER_MARGIN, busy_around, picture_hints, picture_rules
from fmnist.photo import ImageRejected, Preprocessed, outline, preprocess
from fmnist.serving.answer import PANEL
from fmnist.serving.gallery import SimilarItems

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    top3: list[tuple[str, float]]  # (class name, calibrated probability), most likely first
    probabilities: dict[str, float]  # every class
    overlay: (
        Image.Image
    )  # the heat map over the input, PANEL x PANEL RGB (224: 8 px per input pixel), as the answer shows it
    model_input: Image.Image  # the 28x28 grey image the model saw
    notice: str | None  # set when the picture does not look like a Fashion-MNIST item: which rules fired
    model: str
    found: Image.Image | None = None  # the picture with the found item's outline and box
    rules: list[str] = field(default_factory=list)  # the names of the notice rules that fired
    hints: list[str] = field(default_factory=list)  # how the picture could be taken better (picture_hints)
    ood_score: float | None = None  # the detector's squared Mahalanobis distance
    thing_score: float | None = None  # the detector's outlier head: its logit of "a thing, not a garment"
    digit_score: float | None = None  # its digit head: the logit of "a handwritten digit, not a garment"
    # the nearest data-set images in the model's feature space: (28x28 image, class name, cosine similarity)
    similar: list[tuple[Image.Image, str, float]] = field(default_factory=list)
    map_title: str = "Where it looked: Grad-CAM"  # the heat map's method (fmnist.explain.maps)
    map_note: str = ""  # its faithfulness beside a random map's, e.g. "deletion 0.81 (random map 0.63)"


@dataclass
class LoadedModel:
    name: str
    model: torch.nn.Module
    config: dict
    test_accuracy: float | None
    detector: dict | None = None  # the Mahalanobis statistics (fmnist.notice.detector), when the checkpoint has them
    similar: SimilarItems | None = None  # the gallery index (fmnist.serving.gallery), when the checkpoint has one

    @property
    def label(self) -> str:
        acc = f"{100 * self.test_accuracy:.2f} % test accuracy" if self.test_accuracy is not None else "untested"
        init = "" if self.name != "mobilenet" or self.config.get("pretrained") else ", not pretrained"
        return f"{self.name} ({acc}{init})"


def load_models(source: str | Path, device: str = "cpu", only: str | None = None) -> list[LoadedModel]:
    """Every model in a checkpoints folder or a Hub repo, best test accuracy first; with only, just that one
    ("default": the most accurate), as catalogue tagging needs (loading all five took 1.7 s of a 14 s run)."""
    local = hub.checkpoint_folder(source)
    folders = store.model_folders(local)
    if only not in (None, "default"):
        if only not in [f.name for f in folders]:
            raise hub.CheckpointError(
                f"{source} has no model {only!r}; choose one of {', '.join(f.name for f in folders)}"
            )
        folders = [f for f in folders if f.name == only]
    loaded = []
    for folder in folders:
        if only == "default" and loaded:
            break
        model, config = store.load_folder(folder, device)
        metrics_path = folder / store.METRICS_NAME
        acc = json.loads(metrics_path.read_text())["test"]["accuracy"] if metrics_path.is_file() else None
        if config.get("dataset", "fashion-mnist") != "fashion-mnist":
            log.warning("skipping %s: trained on %s, not Fashion-MNIST", folder, config["dataset"])
            continue
        loaded.append(
            LoadedModel(
                folder.name, model, config, acc, detector.load_detector(folder), SimilarItems.load(local, folder)
            )
        )
    if not loaded:
        raise hub.CheckpointError(f"{source} holds no fmnist checkpoints")
    return loaded


def detector_scores(entry: LoadedModel, feats: torch.Tensor) -> tuple[list, list, list]:
    """Mahalanobis distances, outlier-head logits and digit-head logits of (N, D) features, one of each per
    picture; None where the checkpoint's detector lacks the part."""
    none = [None] * len(feats)
    if entry.detector is None:
        return none, none, none
    feats = feats.double().cpu()
    thing = detector.outlier_scores(feats, entry.detector)
    digit = detector.digit_scores(feats, entry.detector)
    return (
        detector.mahalanobis_scores(feats, entry.detector).tolist(),
        thing.tolist() if thing is not None else none,
        digit.tolist() if digit is not None else none,
    )


def _beyond(entry: LoadedModel, rule: str, score: float | None, margin: float = 0.0) -> bool:
    """Whether score passes the checkpoint's limit for rule, lowered by margin."""
    limit = entry.config.get("notice_threshold", {}).get(rule)
    return score is not None and limit is not None and score > limit - margin


class Predictor:
    """Loads the models once; `predict` is safe to call from several threads at once."""

    def __init__(self, models: list[LoadedModel]):
        self.models = {m.name: m for m in models}
        self.default = models[0].name  # the most accurate

    @classmethod
    def from_source(cls, source: str | Path, device: str = "cpu", only: str | None = None) -> Predictor:
        return cls(load_models(source, device, only))

    def predict(self, image, model_name: str | None = None) -> Prediction:
        name = model_name or self.default
        if name not in self.models:
            raise ImageRejected(f"Unknown model {name!r}; choose one of {', '.join(self.models)}.")
        entry = self.models[name]
        pre = preprocess(image)
        dev = next(entry.model.parameters()).device
        x = torch.tensor(pre.pixels, dtype=torch.float32, device=dev).div(255.0)[None, None]  # (1, 1, 28, 28)
        with torch.inference_mode():
            logits = entry.model(x)
        cam = explain(entry.model, x, [int(logits.argmax())])  # the method recorded for this model
        probs = torch.softmax(logits.float() / entry.config.get("temperature", 1.0), dim=1)[0].cpu().numpy()
        order = np.argsort(-probs)
        top3 = [(CLASS_NAMES[i], float(probs[i])) for i in order[:3]]
        with torch.inference_mode():
            feats = entry.model.penultimate(x).double().cpu()
        (score,), (thing,), (digit,) = detector_scores(entry, feats)
        similar = (
            [
                (Image.fromarray(entry.similar.gallery.images[i]), CLASS_NAMES[label], sim)
                for i, label, sim in entry.similar.nearest(feats)
            ]
            if entry.similar is not None
            else []
        )
        rules = self.notice_rules(entry, pre, score, thing, digit)
        return Prediction(
            top3=top3,
            probabilities={c: float(p) for c, p in zip(CLASS_NAMES, probs)},
            overlay=overlay(pre.pixels, cam[0], size=PANEL),
            model_input=Image.fromarray(pre.pixels),
            map_title=map_title(entry.model),
            map_note=map_note(entry.model),
            notice=self.notice_text(rules, pre, entry, score, thing, digit),
            model=name,
            found=outline(pre),
            rules=rules,
            hints=picture_hints(pre),
            ood_score=score,
            thing_score=thing,
            digit_score=digit,
            similar=similar,
        )

    @staticmethod
    def notice_rules(
        entry: LoadedModel,
        pre: Preprocessed,
        score: float | None,
        thing: float | None = None,
        digit: float | None = None,
    ) -> list[str]:
        """The names of the rules that fire for this picture, most basic first."""
        rules = picture_rules(pre)
        if rules == ["no item"]:
            return rules
        if _beyond(entry, "mahalanobis", score) or _beyond(entry, "outlier", thing) or _beyond(entry, "digit", digit):
            model_rule = "unlike any garment"
        elif busy_around(pre) and _beyond(entry, "outlier", thing, BUSY_OUTLIER_MARGIN):
            model_rule = "part of a scene"
        else:
            return rules
        rules.insert(len([r for r in rules if r != "several items"]), model_rule)  # before "several items"
        return rules

    @staticmethod
    def notice_text(
        rules: list[str],
        pre: Preprocessed,
        entry: LoadedModel,
        score: float | None,
        thing: float | None = None,
        digit: float | None = None,
    ) -> str | None:
        if not rules:
            return None
        limits = entry.config.get("notice_threshold", {})
        unlike = []
        if _beyond(entry, "mahalanobis", score):
            unlike.append(
                f"its features are farther from every class than a garment's would be (distance "
                f"{score:.0f} against a limit of {limits['mahalanobis']:.0f})"
            )
        if _beyond(entry, "outlier", thing):
            unlike.append(
                f"they resemble the pictures of things that are not garments it learnt from (score "
                f"{thing:.1f} against a limit of {limits['outlier']:.1f})"
            )
        if _beyond(entry, "digit", digit):
            unlike.append(
                f"they resemble the photographed handwritten digits it learnt from (score {digit:.1f} against a "
                f"limit of {limits['digit']:.1f})"
            )
        says = {
            "no item": "No garment stands out from the background of this picture, so the answer above means "
            "little. Photograph a single item on a plain background that differs from it in colour or "
            "lightness: a white shirt shows on a dark table, not on a white sheet.",
            "fills the frame": "What was found reaches all four edges and covers most of the picture: this looks "
            "like a scene or a close-up, not one garment on a backdrop.",
            "shape": f"What was found is {pre.aspect:.1f} times as long as it is wide; no garment in the data set is "
            f"more than 7 times.",
            "unlike any garment": f"To the model this picture looks unlike every garment: {'; '.join(unlike)}. "
            f"{100 * limits.get('pass_rate', 0.95):.0f} % of real items pass these limits.",
            "busy picture": f"Around what was found, much of the picture is not a plain surface "
            f"({100 * max(pre.clutter, pre.unexplained):.0f} % of it): this looks like a scene, a texture or many "
            "things, and what was found may be only a part of one.",
            "small, at the edge": f"What was found is small ({100 * pre.fill:.1f} % of the picture) and runs off "
            "its edge: it may be part of something larger outside the frame rather than a garment.",
            "mostly outside the picture": "What was found runs off the picture's edge along a cut longer than the "
            "part inside would allow if most of it were in the picture: most of it is outside the frame, so it may "
            "be part of something larger. A photo with the whole garment in it, a margin all round, reads better.",
            "part of a scene": f"Around what was found, {100 * pre.unexplained:.0f} % of the picture is not a "
            "plain surface, and what was found is only loosely like a garment (its score "
            f"{thing if thing is not None else float('nan'):.1f}, within {BUSY_OUTLIER_MARGIN:.0f} of the limit "
            f"of {limits.get('outlier', float('nan')):.1f} for things that are not garments): it may be one part "
            "of a scene, like a building in a street.",
            "across the picture": "What was found runs out of the picture on two opposite sides: this looks like "
            "part of a landscape, a street or a surface, not one garment laid on a backdrop.",
            "several items": f"The picture shows {pre.items} separate items; only the largest (outlined) was "
            "classified.",
        }
        lines = [f"- **{rule}**: {says[rule]}" for rule in rules]
        head = "Treat the answer with care." if rules != ["several items"] else "Note:"
        return head + "\n" + "\n".join(lines)
