"""fmnist on Hugging Face Spaces: upload a garment picture, get the top-3 classes with calibrated
probabilities and a heat map of what the answer rests on (the method most faithful for each model, with its
faithfulness score beside a random map's: fmnist.explain.maps, docs/explain.md).

Weights come from the Hub repo named in $FMNIST_HUB_REPO (USER/NAME) when it is set and reachable, and
otherwise from the bundled checkpoints/ folder, so the app also starts offline.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import gradio as gr
import torch
from PIL import Image

from fmnist import dataset
from fmnist.checkpoints import hub, store
from fmnist.explain.maps import summary_table
from fmnist.notice.rules import HINTS
from fmnist.photo import ImageRejected, warm_up
from fmnist.serving.answer import answer_sheet
from fmnist.serving.outputs import OUTPUT_MAX_AGE_S, OutputFiles
from fmnist.serving.predict import Predictor, load_models
from fmnist.serving.uploads import (
    MAX_PICTURE_BYTES,
    BatchRejected,
    batch_items,
    keep_pictures,
    limits_text,
    too_large,
)
from fmnist.tag.core import CSV_HEADER, TagRow, tag, write_csv

log = logging.getLogger("fmnist.app")
HERE = Path(__file__).resolve().parent
CHECKPOINTS = Path(os.environ.get("FMNIST_CHECKPOINTS", HERE / "checkpoints"))  # the offline fallback
EXAMPLES = HERE / "examples"
HUB_REPO_ENV = hub.DEFAULT_REPO_ENV  # FMNIST_HUB_REPO
MAX_UPLOAD = "200mb"  # a batch's zip; one picture is held to MAX_PICTURE_BYTES (10 MB) by classify itself
# A 28x28 upload (such as the examples) would show 28 pixels wide: scale small pictures up, crisply.
CSS = """
#garment img { min-width: 60%; min-height: 60%; object-fit: contain; image-rendering: pixelated; }
"""
CONCURRENCY = 2  # two CPU cores on a free Space: a third request would only queue inside torch
BATCH_WORKERS = 1  # a batch decodes in one process, leaving the other core to single pictures


def load_predictor() -> tuple[Predictor, Path, str]:
    """(predictor, folder holding the checkpoints, where they came from)."""
    repo = os.environ.get(HUB_REPO_ENV)
    if repo:
        try:
            folder = hub.checkpoint_folder(repo)
            return Predictor(load_models(folder)), folder, f"the Hub repo `{repo}`"
        except hub.CheckpointError as e:  # offline, unknown repo, bad files: the bundled weights still serve
            log.warning("cannot use the Hub repo %s (%s: %s); using the bundled checkpoints", repo, type(e).__name__, e)
    return Predictor(load_models(CHECKPOINTS)), CHECKPOINTS, "the bundled `checkpoints/` folder"


def about_markdown(folder: Path, source: str) -> str:
    entries = hub.checkpoint_entries(folder)
    text = (
        f"Weights from {source}. Test set: the {entries[0][2]['test']['n']:,} Fashion-MNIST test images, used "
        "for this table only; each model's epoch and calibration temperature were chosen on a validation "
        "split. ECE is the expected calibration error of the calibrated probabilities.\n\n" + hub.results_table(entries)
    )
    maps = summary_table(store.model_folders(folder))
    if maps.count("\n") > 1:
        text += (
            "\n\nThe heat map each model shows, chosen as the most faithful of Grad-CAM, HiResCAM, occlusion and "
            "RISE on validation images, and how faithful it is on 300 test images beside three maps that know "
            "nothing of the model: random smooth maps, a blob at the centre and the image's own brightness "
            "(higher is better; deletion: 1 - the area under the class's probability as the hottest pixels "
            "are blacked out; insertion: the area as they are put back on a blurred copy; ROAD: "
            "pytorch-grad-cam's; `python -m benchmarks.faithfulness`):\n\n" + maps
        )
    baselines = folder / "baselines.json"
    if baselines.is_file():
        text += (
            "\n\nClassical baselines (scikit-learn, same split, `python -m fmnist.training.baselines`):\n\n"
            "| model | test accuracy | fit time |\n|---|---|---|\n"
            + "\n".join(
                f"| {r['model']} | {100 * r['test_acc']:.2f} % | {r['fit_seconds']:.0f} s |"
                for r in json.loads(baselines.read_text())
            )
        )
    return text


def build_classify_tab(predictor: Predictor, outputs: OutputFiles, choices: list) -> None:
    """One picture: top-3, what was found, what the model saw, the heat map, the notice and similar items."""

    def classify(image: dict | None, model_name: str):
        """Classify a photo or picture of one garment into the 10 Fashion-MNIST classes.

        The picture is turned into a 28x28 grey image the way the data set's were made (item found against
        its backdrop, cropped, centred, negated) and classified by the chosen model.

        Args:
            image: the picture of one garment, ideally on a plain background (PNG, JPEG, HEIC, AVIF, WebP...).
            model_name: which model to use: resnet (the most accurate), deep_cnn, basic_cnn, mlp or mobilenet.

        Returns:
            the top-3 classes with calibrated probabilities; one picture of the answer (700 px wide): the
            picture with the found item outlined, the 28x28 image the model saw and a heat map of where
            it looked side by side (224 px each), and beneath them the 8 most similar training images in the
            model's feature space, nearest first; a notice (empty when all is well) saying when the picture does
            not look like a garment, and why, followed by a hint when the garment seems cut by the picture's edge;
            and the similar items' classes and cosine similarities as text.
        """
        # preprocess=False: the upload reaches us as Gradio's file record (already checked to be in its
        # upload folder), so that every bad file gets our own clear message rather than a decoder's
        path = image.get("path") if isinstance(image, dict) else None
        try:
            if path and Path(path).is_file() and Path(path).stat().st_size > MAX_PICTURE_BYTES:
                raise ImageRejected(f"The file is {too_large(Path(path).stat().st_size)}.")
            p = predictor.predict(path, model_name)
        except ImageRejected as e:
            raise gr.Error(str(e), title="Cannot classify this picture") from None
        except Exception:  # a sentence for the person, the cause in the server's log
            log.exception("classify failed on %s", path)
            raise gr.Error(
                "Something went wrong with this picture on our side; please try another one.",
                title="Cannot classify this picture",
            ) from None
        notes = ([f"**Notice.** {p.notice}"] if p.notice else []) + [f"**Hint.** {HINTS[h]}" for h in p.hints]
        notice = "\n\n".join(notes)
        # every picture of the answer in one file: each output file costs a write, a copy into Gradio's cache
        # and a fetch, and four of them took longer than the model (fmnist/serving/answer.py)
        sheet = outputs.save(
            answer_sheet(p.found, p.model_input, p.overlay, p.similar, p.map_title, p.map_note), "answer"
        )
        captions = " · ".join(f"{k}. {name} ({sim:.2f})" for k, (_, name, sim) in enumerate(p.similar, 1))
        return dict(p.top3), sheet, notice, captions

    with gr.Tab("Classify"):
        with gr.Row():
            with gr.Column():
                image = gr.Image(
                    label="Garment picture (PNG, JPEG, HEIC, AVIF, ...)",
                    type="filepath",
                    sources=["upload", "clipboard", "webcam"],
                    height=320,
                    elem_id="garment",
                )
                model = gr.Dropdown(choices=choices, value=predictor.default, label="Model")
                button = gr.Button("Classify", variant="primary")
            with gr.Column():
                label = gr.Label(num_top_classes=3, label="Top 3 (calibrated probabilities)", elem_id="top3")
                notice = gr.Markdown(label="Notice", show_label=True, elem_id="notice")
                sheet = gr.Image(
                    label="What was found, what the model saw, where it looked (a heat map), and the most "
                    "similar training items",
                    format="png",
                    elem_id="answer",
                    show_label=False,
                )  # the picture has its own titles
                captions = gr.Markdown(
                    label="Similar items, nearest first (class, cosine similarity)", elem_id="similar-captions"
                )
        examples = sorted(str(p) for p in EXAMPLES.glob("*.png"))
        gr.Examples(examples=[[e] for e in examples], inputs=[image], label="Fashion-MNIST test images, one per class")
        photos = sorted(str(p) for p in (EXAMPLES / "photos").glob("*.jpg"))
        gr.Examples(
            examples=[[e] for e in photos],
            inputs=[image],
            label="Phone-like pictures of test items, rendered by the photo benchmark (not photographed), "
            "and one picture that is not a garment",
        )
        button.click(classify, [image, model], [label, sheet, notice, captions], api_name="classify", preprocess=False)


def build_batch_tab(predictor: Predictor, outputs: OutputFiles, choices: list) -> None:
    """Many pictures or one zip: a table, thumbnails with labels and a CSV, through the fast tagging path.

    Batches run one at a time (their own concurrency limit) and in one worker process, so that a batch
    never takes both cores from the single-picture requests."""

    def tag_batch(files: list[dict] | None, model_name: str, progress=gr.Progress()):
        # preprocess=False: Gradio's own file-type check refuses a whole batch for one PDF without naming it;
        # here each file that is not a picture gets its own row, with its name, and the rest are tagged
        paths = [f.get("path") for f in files or [] if isinstance(f, dict) and f.get("path")]
        if model_name not in predictor.models:
            raise gr.Error(
                f"Unknown model {model_name!r}; choose one of {', '.join(predictor.models)}.",
                title="Cannot tag this batch",
            )
        try:
            items = batch_items(paths)
        except BatchRejected as e:
            raise gr.Error(str(e), title="Cannot tag this batch") from None
        readable = [it for it in items if it.error is None]
        progress(0, desc=f"0 of {len(readable)} pictures")
        tagged = iter(
            tag(
                predictor,
                [it.source for it in readable],
                [it.name for it in readable],
                model_name,
                workers=BATCH_WORKERS,
                progress=lambda done, total: progress(done / total, desc=f"{done} of {total} pictures"),
            )
        )
        rows = [next(tagged) if it.error is None else TagRow(it.name, [], {}, [], it.error) for it in items]
        table = [r.csv_row() for r in rows]
        batch = uuid.uuid4().hex
        keep_pictures(readable, outputs.dir / f"batch-{batch}")  # for the export of checked tags
        gallery = [
            (
                outputs.save(Image.fromarray(r.thumbnail), "thumb"),
                f"{r.top3[0][0]} {r.top3[0][1]:.0%}"
                + (" ⚠" if r.rules else "")
                + (" ✂" if r.hints else "")
                + f" · {r.file}",
            )
            for r in rows
            if r.error is None and r.thumbnail is not None
        ]
        csv_path = write_csv(rows, outputs.dir / f"tags-{batch}.csv")
        n_bad = sum(r.error is not None for r in rows)
        summary = f"Tagged {len(rows) - n_bad} of {len(rows)} files" + (
            f"; {n_bad} could not be read (see the notice column)." if n_bad else "."
        )
        return summary, table, gallery, str(csv_path)

    def checked(table, csv_file) -> tuple[Path, Path]:
        """The batch's pictures folder and its tags as the table now stands (labels typed in)."""
        name = Path(csv_file if isinstance(csv_file, str) else (csv_file or {}).get("path", "")).name
        m = re.fullmatch(r"tags-([0-9a-f]{32})(?:\.corrected)?\.csv", name)
        pictures = outputs.dir / f"batch-{m.group(1)}" if m else None
        if pictures is None or not pictures.is_dir():
            raise gr.Error(
                f"Tag a batch first (or again: its pictures are kept for {OUTPUT_MAX_AGE_S // 60} minutes).",
                title="Nothing to export",
            )
        rows = table.values.tolist() if hasattr(table, "values") else (table or {}).get("data", [])
        corrected = outputs.dir / f"tags-{m.group(1)}.corrected.csv"
        write_csv([["" if v is None else str(v) for v in row] for row in rows], corrected)
        return pictures, corrected

    def download_corrections(table, csv_file):
        pictures, corrected = checked(table, csv_file)
        try:
            labelled, skipped = dataset.read_labels(pictures, corrected, first_row=1)
        except dataset.DatasetError as e:
            raise gr.Error(str(e).replace("\n", "; "), title="Some labels cannot be used") from None
        return f"{len(labelled)} pictures labelled, {skipped} skipped.", str(corrected)

    def export_dataset(table, csv_file):
        pictures, corrected = checked(table, csv_file)
        out = Path(tempfile.mkdtemp(dir=outputs.dir, prefix="export-")) / "fmnist-tags"
        try:
            dataset.build(pictures, corrected, out, command="the fmnist app's batch tab, Export", first_row=1)
        except dataset.DatasetError as e:
            raise gr.Error(str(e).replace("\n", "; "), title="Cannot export these labels") from None
        archive = shutil.make_archive(str(out), "zip", out.parent, out.name)
        return f"Exported {dataset.size(out)} labelled pictures as a dataset ([docs/loop.md](docs/loop.md)).", archive

    with gr.Tab("Tag a batch"):
        gr.Markdown(
            "Tag a whole catalogue: the top-3 classes, the notice rules and the hints (a garment cut by the "
            "picture's edge) for every picture, as a table "
            "and a CSV (the same columns as `python -m fmnist.tag FOLDER`). No heat map here: that is "
            f"for one picture at a time. **Limits:** {limits_text()}"
        )
        with gr.Row():
            files = gr.File(
                elem_id="batch-files",
                label="Pictures, or one .zip",
                file_count="multiple",
                type="filepath",
                file_types=["image", ".zip", ".heic", ".heif", ".avif"],
                height=160,
            )
            with gr.Column():
                model = gr.Dropdown(choices=choices, value=predictor.default, label="Model")
                button = gr.Button("Tag all", variant="primary")
        summary = gr.Markdown(elem_id="batch-summary")
        table = gr.Dataframe(
            headers=CSV_HEADER,
            label="Tags: type a class name (or skip) in the label column where you have checked a picture",
            interactive=True,
            static_columns=list(range(len(CSV_HEADER) - 1)),  # the model's answers stay as they were
            wrap=True,
            elem_id="batch-table",
        )
        gallery = gr.Gallery(
            label="Thumbnails with their labels (⚠: a notice; ✂: cut by the edge)",
            columns=8,
            height=300,
            object_fit="contain",
            elem_id="batch-gallery",
        )
        download = gr.File(label="CSV", elem_id="batch-csv")
        with gr.Row():
            correct = gr.Button("Download the corrected CSV")
            export = gr.Button("Export as a dataset (zip)")
        checked_summary = gr.Markdown(elem_id="batch-checked")
        checked_file = gr.File(label="Corrected CSV or dataset", elem_id="batch-export")
        correct.click(
            download_corrections, [table, download], [checked_summary, checked_file], api_name="corrected_csv"
        )
        export.click(export_dataset, [table, download], [checked_summary, checked_file], api_name="export_dataset")
        button.click(
            tag_batch,
            [files, model],
            [summary, table, gallery, download],
            api_name="tag_batch",
            concurrency_limit=1,
            concurrency_id="batch",
            preprocess=False,
        )


def build_about_tab(folder: Path, source: str) -> None:
    with gr.Tab("About the models"):
        gr.Markdown(about_markdown(folder, source))
        best = store.model_folders(folder)[0]
        gr.Image(
            value=str(best / "confusion_matrix.png"),
            label=f"Confusion matrix: {best.name}",
            interactive=False,
            format="png",
        )


def build_demo(predictor: Predictor, folder: Path, source: str) -> gr.Blocks:
    outputs = OutputFiles()
    choices = [(m.label, m.name) for m in predictor.models.values()]
    with gr.Blocks(title="fmnist: what garment is this?", delete_cache=(600, 1800)) as demo:
        gr.Markdown(
            "# fmnist: what garment is this?\nUpload, paste or photograph one garment on a plain "
            "background. The picture is turned into a 28x28 grey image like Fashion-MNIST's, classified, "
            "and a heat map shows what the answer rests on, with how faithful that map is."
        )
        build_classify_tab(predictor, outputs, choices)
        build_batch_tab(predictor, outputs, choices)
        build_about_tab(folder, source)
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    demo.output_dir = outputs.dir
    return demo


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # CONCURRENCY requests run at once, one core each: two torch threads per request would only fight over
    # the cores (one thread was no slower for a single answer: benchmarks/results/roundtrip-cpu.json)
    torch.set_num_threads(1)
    predictor, folder, source = load_predictor()
    # the pipeline's lazy imports, made once before requests arrive: two first requests importing
    # skimage.morphology at the same moment failed one of them ("partially initialized module", benchmarks.load)
    warm_up()
    log.info("serving %s from %s", ", ".join(predictor.models), source)
    demo = build_demo(predictor, folder, source)
    # mcp_server: the classify function is also an MCP tool at /gradio_api/mcp/ (the gradio[mcp] extra)
    demo.launch(
        max_file_size=MAX_UPLOAD,
        show_error=True,
        allowed_paths=[str(demo.output_dir)],
        css=CSS,
        footer_links=["gradio", "settings"],
        mcp_server=True,
    )


if __name__ == "__main__":
    main()
