import csv
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from fmnist import CLASS_NAMES
from fmnist.photo import ImageRejected, preprocess
from fmnist.serving.predict import Predictor
from fmnist.tag.cli import main as tag_main

CHECKPOINTS = ROOT / "checkpoints"
EXAMPLES = sorted((ROOT / "examples").glob("*.png"))
pytestmark = pytest.mark.skipif(not any(CHECKPOINTS.glob("*/model.safetensors")), reason="no bundled checkpoints")


@pytest.fixture(scope="module")
def predictor():
    return Predictor.from_source(CHECKPOINTS)


def test_models_load_once_best_first(predictor):
    accs = [m.test_accuracy for m in predictor.models.values()]
    assert accs == sorted(accs, reverse=True) and predictor.default == next(iter(predictor.models))
    assert all(f"{100 * m.test_accuracy:.2f} %" in m.label for m in predictor.models.values())


def test_prediction_has_everything_the_app_shows(predictor):
    p = predictor.predict(EXAMPLES[0])
    assert len(p.top3) == 3 and [c for c, _ in p.top3][0] in CLASS_NAMES
    probs = [pr for _, pr in p.top3]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    assert abs(sum(p.probabilities.values()) - 1) < 1e-5
    assert p.overlay.size == (224, 224) and p.model_input.size == (28, 28)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_the_default_model_gets_the_shipped_examples_right(predictor, example):
    true = CLASS_NAMES[int(example.name.split("_")[0])]
    assert predictor.predict(example).top3[0][0] == true


def test_a_blank_picture_gets_a_notice(predictor):
    p = predictor.predict(Image.new("RGB", (200, 200), (255, 255, 255)))
    assert p.rules == ["no item"] and "No garment stands out" in p.notice and "on a dark table" in p.notice


def test_noise_gets_a_notice(predictor):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8))
    p = predictor.predict(noise)
    assert p.notice and p.rules


@pytest.mark.parametrize("name", ["astronaut", "coffee", "rocket"])
def test_a_photograph_without_a_garment_gets_a_notice(predictor, name):
    import skimage.data

    p = predictor.predict(Image.fromarray(getattr(skimage.data, name)()))
    assert p.notice and p.rules, (name, p.top3, p.ood_score)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_the_shipped_examples_get_no_notice(predictor, example):
    p = predictor.predict(example)
    assert p.notice is None, (p.rules, p.ood_score)


def test_the_notice_names_the_rule_that_fired(predictor):
    entry = predictor.models[predictor.default]
    limit = entry.config["notice_threshold"]["mahalanobis"]
    pre = preprocess(EXAMPLES[1])
    assert predictor.notice_rules(entry, pre, limit * 0.9) == []
    assert predictor.notice_rules(entry, pre, limit * 1.1) == ["unlike any garment"]
    assert "**unlike any garment**" in predictor.notice_text(["unlike any garment"], pre, entry, limit * 1.1)
    # the second signal: the outlier head's score alone, past its own limit, fires the same rule and says why
    thing_limit = entry.config["notice_threshold"]["outlier"]
    assert predictor.notice_rules(entry, pre, limit * 0.9, thing_limit - 0.5) == []
    assert predictor.notice_rules(entry, pre, limit * 0.9, thing_limit + 0.5) == ["unlike any garment"]
    text = predictor.notice_text(["unlike any garment"], pre, entry, limit * 0.9, thing_limit + 0.5)
    assert "pictures of things" in text and "farther from every class" not in text
    # the third: the digit head's score alone, past its limit
    digit_limit = entry.config["notice_threshold"]["digit"]
    low = (limit * 0.9, thing_limit - 0.5)
    assert predictor.notice_rules(entry, pre, *low, digit_limit - 0.5) == []
    assert predictor.notice_rules(entry, pre, *low, digit_limit + 0.5) == ["unlike any garment"]
    text = predictor.notice_text(["unlike any garment"], pre, entry, *low, digit_limit + 0.5)
    assert "handwritten digits" in text and "pictures of things" not in text


def test_an_outlier_head_learns_things_on_every_side_and_its_file_scores_the_same(tmp_path):
    """Things all round the garments (a ring), which no straight line parts from them: the head's hidden layer
    flags them, a refit gives the same head, the file gives the same scores, and a head of before (a logistic
    regression, without the hidden layer) still scores."""
    import torch

    from fmnist.notice import detector

    rng = np.random.default_rng(0)
    garments = torch.from_numpy(rng.normal(size=(400, 6)))
    ring = rng.normal(size=(200, 6))
    things = torch.from_numpy(4.0 * ring / np.linalg.norm(ring, axis=1, keepdims=True))
    stats = detector.as_stored(detector.fit_outlier_head(garments, things))
    again = detector.as_stored(detector.fit_outlier_head(garments, things))
    assert all(torch.equal(stats[k], again[k]) for k in stats)
    limit = np.quantile(detector.outlier_scores(garments, stats).numpy(), 0.95)
    assert (detector.outlier_scores(things, stats).numpy() > limit).mean() > 0.9
    detector.save_detector(tmp_path, stats)
    loaded = detector.load_detector(tmp_path)
    assert torch.allclose(detector.outlier_scores(things, loaded), detector.outlier_scores(things, stats))
    old = {k: v for k, v in stats.items() if "hidden" not in k} | {"oe_weight": torch.ones(6, dtype=torch.float64)}
    z = (things - old["oe_mean"]) / old["oe_scale"]
    assert torch.allclose(detector.outlier_scores(things, old), z.sum(1) + old["oe_bias"][0])
    assert detector.digit_scores(things, stats) is None


def test_the_bundled_detectors_have_all_three_signals(predictor):
    for entry in predictor.models.values():
        assert {"oe_weight", "oe_bias", "oe_mean", "oe_scale", "means", "precision"} <= set(entry.detector)
        assert {"digit_weight", "digit_bias", "digit_mean", "digit_scale"} <= set(entry.detector)
        assert {"oe_hidden_weight", "oe_hidden_bias", "digit_hidden_weight", "digit_hidden_bias"} <= set(entry.detector)
        limits = entry.config["notice_threshold"]
        assert limits["fit_things"] > 500 and limits["fit_photos"] > 3000 and limits["pass_rate"] >= 0.95
        assert limits["fit_digits"] > 300 and "digit" in limits


def test_several_items_are_counted_and_the_largest_classified(predictor):
    """Two trousers side by side on a grey backdrop: the notice says so, the answer is still Trouser."""
    trouser = np.asarray(Image.open(EXAMPLES[1]).convert("L"))
    item = Image.fromarray(255 - trouser).resize((168, 168), Image.Resampling.BICUBIC)
    photo = Image.new("L", (600, 300), 200)
    photo.paste(item.resize((140, 140)), (40, 80))
    photo.paste(item, (360, 60), Image.fromarray((np.asarray(item) < 190).astype(np.uint8) * 255))
    p = predictor.predict(photo.convert("RGB"))
    assert "several items" in p.rules and "2 separate items" in p.notice
    assert p.top3[0][0] == "Trouser"


def test_the_prediction_shows_what_was_found(predictor):
    p = predictor.predict(EXAMPLES[0])
    assert p.found is not None and p.found.size[0] >= 28


def test_unknown_model_is_refused(predictor):
    with pytest.raises(ImageRejected, match="Unknown model 'vgg'"):
        predictor.predict(EXAMPLES[0], "vgg")


def test_tagging_cli_writes_the_expected_csv(tmp_path):
    folder = tmp_path / "catalogue"
    folder.mkdir()
    for e in EXAMPLES[:3]:
        shutil.copy(e, folder / e.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    out = tmp_path / "tags.csv"
    assert tag_main([str(folder), "--out", str(out), "--checkpoints", str(CHECKPOINTS)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["file"] for r in rows] == sorted([e.name for e in EXAMPLES[:3]] + ["broken.jpg"])
    by_file = {r["file"]: r for r in rows}
    assert by_file["broken.jpg"]["notice"].startswith("error:") and by_file["broken.jpg"]["top1"] == ""
    for e in EXAMPLES[:3]:
        r = by_file[e.name]
        assert r["top1"] == CLASS_NAMES[int(e.name.split("_")[0])]
        p = [float(r[k]) for k in ("p1", "p2", "p3")]
        assert p == sorted(p, reverse=True) and 0 < sum(p) <= 1.0001
    assert list(rows[0]) == ["file", "top1", "p1", "top2", "p2", "top3", "p3", "notice", "hint", "label"]


PHOTO_EXAMPLES = sorted((ROOT / "examples" / "photos").glob("*.jpg"))


def test_the_photo_examples_show_what_the_app_is_for(predictor):
    """The app's second examples row: rendered phone-like pictures, which the default model reads through
    the photo pipeline, and one picture that is not a garment, which gets the notice."""
    rendered = [p for p in PHOTO_EXAMPLES if p.name.startswith("rendered_")]
    assert len(rendered) >= 4
    for path in rendered:
        truth = path.stem.split("_")[2]
        if path.stem.split("_")[1].startswith("pattern"):
            continue  # the textured, printed scene: shown for its notice as much as its answer
        top = predictor.predict(path).top3[0][0]
        assert top.lower().replace("/", "-").replace(" ", "-") == truth, (path.name, top)
    [other] = [p for p in PHOTO_EXAMPLES if p.name.startswith("not-a-garment")]
    assert predictor.predict(other).rules


def test_a_garment_cut_by_the_picture_edge_gets_a_hint_and_a_whole_one_none(predictor):
    """The hint says how to take the picture better; it is not a notice (a cut garment is still a garment)."""
    from fmnist.photo.render.cut import cut_photo

    trouser = np.asarray(Image.open(EXAMPLES[1]).convert("L"))
    for seed in (3, 4):
        whole, cut = (predictor.predict(cut_photo(trouser, share, seed)) for share in (0.0, 0.2))
        assert whole.hints == [] and cut.hints == ["cut off"], seed
    photos = [p for p in PHOTO_EXAMPLES if p.name.startswith("rendered_")]
    shipped = [predictor.predict(path).hints for path in EXAMPLES + photos]
    assert shipped == [[]] * len(shipped)  # data-set images and whole photos: none


def _surface_with(draw, size=(800, 600), surface=(205, 200, 190)) -> Image.Image:
    """A phone-like picture: a plain surface with what draw(ImageDraw) puts on it, a little noise, JPEG."""
    import io

    from PIL import ImageDraw

    img = Image.new("RGB", size, surface)
    draw(ImageDraw.Draw(img))
    arr = np.asarray(img, np.float32) + np.random.default_rng(3).normal(0, 2, (size[1], size[0], 3))
    out = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=90)
    return Image.open(io.BytesIO(out.getvalue()))


def test_a_small_thing_running_off_the_edge_is_judged_with_the_whole_picture(predictor):
    """A dark cup cut by the picture's bottom edge, 1 % of the picture: a fragment, not a garment photo."""
    cup = _surface_with(lambda d: d.ellipse((360, 555, 440, 635), fill=(40, 30, 30)))
    p = predictor.predict(cup)
    assert "small, at the edge" in p.rules and "runs off its edge" in p.notice
    assert "cut off" in p.hints  # and the hint says so, as for any item at the edge


def test_half_a_box_beside_the_frame_is_judged_with_the_whole_picture(predictor):
    """A dark box whose lower half is beyond the picture's bottom edge (6 % of the picture inside it) is cut along
    more than it reaches in: a part of something outside. The whole box inside the picture is left alone."""
    box = predictor.predict(_surface_with(lambda d: d.rectangle((280, 480, 520, 720), fill=(60, 45, 40))))
    assert "small, at the edge" in box.rules and "runs off its edge" in box.notice
    whole = predictor.predict(_surface_with(lambda d: d.rectangle((280, 200, 520, 440), fill=(60, 45, 40))))
    assert "small, at the edge" not in whole.rules


def test_a_busy_picture_is_judged_with_the_whole_picture(predictor):
    """A street: sky, buildings with windows, a tower; whatever part is found, most of the rest is no surface."""
    from fmnist.photo.render.strays import scene

    busy = [scene(np.random.default_rng([0, 4099, 1, i])) for i in range(6)]
    fired = [predictor.predict(picture) for picture in busy]
    assert any("busy picture" in p.rules for p in fired)
    assert all(p.notice for p in fired if "busy picture" in p.rules)


def test_a_band_across_the_picture_is_judged_with_the_whole_picture(predictor):
    """Hills that run out of the picture on the left and the right: part of a landscape. The same hill, whole
    inside the picture, is left to the other rules."""

    def hills(left, right):
        def draw(d):
            xs = np.linspace(left, right, 60)
            ridge = [(float(x), 330 + 40 * np.sin(x / 70)) for x in xs]
            d.polygon(ridge + [(right, 470), (left, 470)], fill=(60, 110, 50))

        return draw

    across = predictor.predict(_surface_with(hills(0, 800)))
    assert "across the picture" in across.rules and "two opposite sides" in across.notice
    inside = predictor.predict(_surface_with(hills(120, 680)))
    assert "across the picture" not in inside.rules


def test_a_thing_mostly_outside_the_picture_is_judged_with_the_whole_picture(predictor):
    """A dark plate whose centre lies beyond the picture's left edge (8 % of the picture inside it): the cut is
    longer than the part inside allows for a thing seen mostly whole. The same plate with a third outside is left
    to the other rules."""

    def plate(centre_x):
        return lambda d: d.ellipse((centre_x - 200, 100, centre_x + 200, 500), fill=(70, 40, 40))

    outside = predictor.predict(_surface_with(plate(-60)))
    assert "mostly outside the picture" in outside.rules and "outside the frame" in outside.notice
    third = predictor.predict(_surface_with(plate(67)))
    assert "mostly outside the picture" not in third.rules


PICTURE_RULES = {"busy picture", "small, at the edge", "mostly outside the picture", "across the picture"}


@pytest.mark.parametrize("share", [0.1, 0.2])
def test_garment_photos_whole_or_cut_by_the_frame_pass_the_picture_rules(share):
    """The rules that judge the whole picture leave garment photos alone: every renderer's, and garments cut by
    the frame (which get the hint, not the notice)."""
    from fmnist.data import load_raw
    from fmnist.notice.rules import picture_rules
    from fmnist.photo.render import RENDERERS, render_item
    from fmnist.photo.render.cut import cut_photo

    items = load_raw(allow_download=False).test_images[:6]
    for k, item in enumerate(items):
        cut = preprocess(cut_photo(item, share, 11 + k))
        assert not PICTURE_RULES & set(picture_rules(cut)), k
    for renderer, (_, levels) in RENDERERS.items():
        pre = preprocess(render_item(renderer, levels[-1], items[int(share * 10)], 5, 0))
        assert not PICTURE_RULES & set(picture_rules(pre)), renderer


def test_the_picture_rules_read_the_measures_of_the_whole_picture():
    import dataclasses

    from fmnist.notice.rules import (
        ACROSS_REACH,
        BUSY_CLUTTER,
        BUSY_UNEXPLAINED,
        CUT_OUT,
        EDGE_FILL,
        SMALL_CUT_FILL,
        SMALL_CUT_RATIO,
        picture_rules,
    )
    from fmnist.photo import Preprocessed

    plain = Preprocessed(np.zeros((28, 28), np.uint8), True, (0, 0, 10, 10), fill=0.2)
    assert picture_rules(plain) == []
    assert picture_rules(dataclasses.replace(plain, clutter=BUSY_CLUTTER + 0.01)) == ["busy picture"]
    scene = dataclasses.replace(plain, unexplained=BUSY_UNEXPLAINED + 0.01)
    assert picture_rules(scene) == ["busy picture"]
    assert picture_rules(dataclasses.replace(scene, textured=True)) == []  # grout and grain are not a scene
    edge = dataclasses.replace(plain, edge_reach=(0.3, 0.0, 0.0, 0.0), fill=EDGE_FILL - 0.01)
    assert picture_rules(edge) == ["small, at the edge"]
    assert picture_rules(dataclasses.replace(edge, fill=EDGE_FILL + 0.05)) == []  # a garment cut by the frame
    # a small thing cut along more than it reaches in (the half of a box beside the frame), not a small garment
    # cut by the frame, which reaches in further than the cut is long
    half = dataclasses.replace(plain, edge_reach=(0.3, 0.0, 0.0, 0.0), fill=(0.3 / (SMALL_CUT_RATIO + 0.1)) ** 2)
    assert half.fill < SMALL_CUT_FILL and picture_rules(half) == ["small, at the edge"]
    assert picture_rules(dataclasses.replace(half, edge_reach=(0.25, 0.0, 0.0, 0.0))) == []
    assert picture_rules(dataclasses.replace(half, edge_reach=(0.4, 0.0, 0.0, 0.0), fill=SMALL_CUT_FILL + 0.01)) == []
    # a cut along 60 % of a side: over CUT_OUT for a thing covering 12 % of the picture, not for one covering 16 %
    beyond = dataclasses.replace(plain, edge_reach=(0.0, 0.0, 0.6, 0.0), fill=(0.6 / (CUT_OUT + 0.1)) ** 2)
    assert picture_rules(beyond) == ["mostly outside the picture"]
    assert picture_rules(dataclasses.replace(beyond, fill=(0.6 / (CUT_OUT - 0.1)) ** 2)) == []
    band = dataclasses.replace(plain, edge_reach=(0.0, 0.0, ACROSS_REACH + 0.01, 0.3))
    assert picture_rules(band) == ["across the picture"]
    assert picture_rules(dataclasses.replace(band, edge_reach=(0.3, 0.0, 0.0, 0.3))) == []  # cut at a corner


def test_in_a_picture_that_is_not_a_plain_surface_the_item_must_look_clearly_like_a_garment(predictor):
    """Where the rest of the picture is not the plain backdrop (over BUSY_UNEXPLAINED_WEAK of it, too little for
    `busy picture`), an outlier-head score within BUSY_OUTLIER_MARGIN of its limit is a notice: `part of a scene`.
    On a plain or a textured backdrop the same score is not."""
    import dataclasses

    from fmnist.notice.rules import BUSY_OUTLIER_MARGIN, BUSY_UNEXPLAINED, BUSY_UNEXPLAINED_WEAK

    entry = predictor.models[predictor.default]
    maha, thing = entry.config["notice_threshold"]["mahalanobis"] * 0.5, entry.config["notice_threshold"]["outlier"]
    plain = preprocess(EXAMPLES[1])
    assert plain.unexplained < BUSY_UNEXPLAINED_WEAK
    street = dataclasses.replace(plain, unexplained=(BUSY_UNEXPLAINED_WEAK + BUSY_UNEXPLAINED) / 2)
    loose, clear = thing - BUSY_OUTLIER_MARGIN + 0.5, thing - BUSY_OUTLIER_MARGIN - 0.5
    assert predictor.notice_rules(entry, street, maha, loose) == ["part of a scene"]
    assert predictor.notice_rules(entry, street, maha, clear) == []
    assert predictor.notice_rules(entry, plain, maha, loose) == []
    assert predictor.notice_rules(entry, dataclasses.replace(street, textured=True), maha, loose) == []
    text = predictor.notice_text(["part of a scene"], street, entry, maha, loose)
    assert "**part of a scene**" in text and f"{100 * street.unexplained:.0f} % of the picture" in text


def test_the_detector_never_learns_a_digit_that_tests_it(monkeypatch):
    """The MNIST digits are split: every fifth is a probe (the benchmark's and validation's digit pictures draw
    from those), and the digit head learns from the rest."""
    import importlib

    from fmnist.photo.render import strays, written

    non_garments = importlib.import_module("fmnist.photo.render.non_garments")
    probe, learnt = written.mnist_digits(True), written.mnist_digits(False)
    assert len(probe) == 1000 and len(learnt) == 4000
    assert not {d.tobytes() for d in probe} & {d.tobytes() for d in learnt}
    asked = []
    monkeypatch.setattr(written, "mnist_digits", lambda probe: asked.append(probe) or learnt[:5])
    non_garments._digit(np.random.default_rng(0))
    strays.blurred_digit(np.random.default_rng(0))
    written.written(0, 0)
    assert asked == [True, True, False]


def test_a_photographed_digit_gets_the_notice_from_the_digit_head(predictor):
    """A handwritten 28x28 digit of the probe pool, drawn large on paper and out of focus (a validation picture):
    the model reads it as a Trouser, which the outlier head lets through; the digit head does not."""
    from fmnist.photo.render.strays import blurred_digit

    p = predictor.predict(blurred_digit(np.random.default_rng([1, 7919, 1, 26])))
    limits = predictor.models[predictor.default].config["notice_threshold"]
    assert p.thing_score < limits["outlier"] and p.digit_score > limits["digit"]
    assert p.rules == ["unlike any garment"] and "handwritten digits" in p.notice
