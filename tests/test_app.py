"""The app through its real Gradio server, called as a user's program would: with gradio_client."""

import io
import json
import os
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from fmnist import CLASS_NAMES
from fmnist.serving.server import running_app
from hostile import zip_of

EXAMPLES = sorted((ROOT / "examples").glob("*.png"))
pytestmark = pytest.mark.skipif(
    not any((ROOT / "checkpoints").glob("*/model.safetensors")), reason="no bundled checkpoints"
)


SERVER_LOG = {}
SERVER_PROCESS = []  # the app's process, for its memory and its tagging workers


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    SERVER_LOG["path"] = tmp_path_factory.mktemp("app") / "app.log"
    with running_app(SERVER_LOG["path"], started=SERVER_PROCESS) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


def classify(client, path, model=None):
    from gradio_client import handle_file

    args = [handle_file(str(path))] if path is not None else [None]
    if model is None:
        model = default_model(client)
    return client.predict(*args, model, api_name="/classify")


_default = {}


def default_model(client):
    if "name" not in _default:
        config = json.loads(urllib.request.urlopen(client.src.rstrip("/") + "/config").read())
        dropdown = next(c for c in config["components"] if c.get("type") == "dropdown")
        _default["name"] = dropdown["props"]["value"]
        _default["choices"] = dropdown["props"]["choices"]
    return _default["name"]


def _panel(sheet_path, k: int) -> np.ndarray:
    """Panel k of the answer's picture (0 found, 1 model input, 2 Grad-CAM) back at 28x28, grey."""
    from fmnist.serving.answer import panel_box

    return np.asarray(Image.open(sheet_path).convert("L").crop(panel_box(k)).resize((28, 28), Image.Resampling.NEAREST))


def test_three_labels_and_one_picture_showing_what_the_model_saw(client):
    from fmnist.serving.answer import WIDTH
    from fmnist.serving.predict import Predictor

    label, sheet, notice, captions = classify(client, EXAMPLES[0])
    assert len(label["confidences"]) == 3
    probs = [c["confidence"] for c in label["confidences"]]
    assert 0 < sum(probs) <= 1 + 1e-6 and probs == sorted(probs, reverse=True)
    assert Image.open(sheet).width == WIDTH and notice == ""  # a data-set item: no notice
    # the middle panel is the model's input, pixel for pixel
    seen = Predictor.from_source(ROOT / "checkpoints", only=default_model(client)).predict(EXAMPLES[0]).model_input
    assert np.array_equal(_panel(sheet, 1), np.asarray(seen))


def test_the_api_names_every_output(client):
    returns = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/classify"]["returns"]
    labels = [r["label"] for r in returns]
    assert "Notice" in labels and not any(label.startswith("value_") for label in labels), labels


def test_a_garment_cut_by_the_edge_gets_the_hint_beside_no_notice(client, tmp_path):
    import numpy as np

    from fmnist.photo.render.cut import cut_photo

    trouser = np.asarray(Image.open(EXAMPLES[1]).convert("L"))
    cut_photo(trouser, 0.2, 3).save(tmp_path / "cut.jpg", quality=90)
    label, _, notice, _ = classify(client, tmp_path / "cut.jpg")
    assert notice.startswith("**Hint.** Part of the item seems to be outside the picture") and "Notice" not in notice
    assert label["label"]


def test_an_everyday_phone_photo_gets_its_class_and_shows_what_was_found(client, tmp_path):
    """A Fashion-MNIST test item rendered as an everyday phone picture (grey backdrop, lighting gradient,
    shadow, coloured garment, noise, JPEG), uploaded as a user would."""
    import numpy as np

    from fmnist.photo.render import render_photo

    trouser = np.asarray(Image.open(EXAMPLES[1]).convert("L"))
    picture, _ = render_photo(trouser, "everyday", np.random.default_rng(3))
    path = tmp_path / "phone.jpg"
    picture.save(path, quality=90)
    label, sheet, notice, captions = classify(client, path)
    assert label["label"] == "Trouser"
    # the first panel shows the photo (a light backdrop), outlined in red where the item was found
    from fmnist.serving.answer import panel_box

    found = np.asarray(Image.open(sheet).convert("RGB").crop(panel_box(0)), dtype=int)
    assert np.median(found) > 100 and ((found[..., 0] > 180) & (found[..., 1] < 120)).sum() > 50


def test_dropdown_defaults_to_the_most_accurate_model_and_shows_accuracies(client):
    best = default_model(client)
    choices = _default["choices"]
    assert all("% test accuracy" in shown for shown, _ in choices)
    metrics = {
        name: json.loads((ROOT / "checkpoints" / name / "metrics.json").read_text())["test"]["accuracy"]
        for _, name in choices
    }
    assert best == max(metrics, key=metrics.get)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_the_shipped_examples_get_their_class(client, example):
    label, *_ = classify(client, example)
    assert label["label"] == CLASS_NAMES[int(example.name.split("_")[0])]


def _bad_inputs(folder: Path) -> dict:
    (folder / "notes.txt").write_text("not an image")
    good = io.BytesIO()
    Image.open(EXAMPLES[0]).resize((300, 300)).save(good, format="PNG")
    (folder / "cut.png").write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    Image.new("L", (1, 1), 255).save(folder / "dot.png")
    Image.new("L", (7000, 7000), 255).save(folder / "huge.png")  # 49 megapixels, ~50 kB of PNG
    bomb = bytearray(good.getvalue())
    bomb[16:24] = (60_000).to_bytes(4, "big") * 2
    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")
    (folder / "bomb.png").write_bytes(bytes(bomb))
    return {
        "no image": None,
        "not an image": folder / "notes.txt",
        "truncated": folder / "cut.png",
        "1x1": folder / "dot.png",
        "huge": folder / "huge.png",
        "decompression bomb": folder / "bomb.png",
    }


def test_every_bad_input_is_an_error_and_the_server_keeps_serving(client, tmp_path):
    from gradio_client.exceptions import AppError

    expected = {
        "no image": "No image",
        "not an image": "not an image",
        "truncated": "truncated",
        "1x1": "1x1 pixels",
        "huge": "megapixel",
        "decompression bomb": "too large|megapixel",
    }
    import re

    for what, path in _bad_inputs(tmp_path).items():
        with pytest.raises(AppError) as e:
            classify(client, path)
        assert re.search(expected[what], str(e.value)), (what, str(e.value))
        label, *_ = classify(client, EXAMPLES[1])  # and the next request succeeds
        assert label["label"] == "Trouser"


def test_uploads_over_the_size_limit_are_refused(server, tmp_path):
    from gradio_client import Client, handle_file

    big = tmp_path / "big.png"
    Image.frombytes("L", (3400, 3400), bytes(range(256)) * (3400 * 3400 // 256) + b"\0" * (3400 * 3400 % 256)).save(
        big, compress_level=0
    )
    assert big.stat().st_size > 10 * 1024 * 1024
    with pytest.raises(Exception, match=r"The file is 1\d\.\d MB, over the 10 MB limit for one picture\."):
        Client(server, verbose=False).predict(
            handle_file(str(big)), default_model(Client(server, verbose=False)), api_name="/classify"
        )


def test_eight_concurrent_clients_get_what_serial_calls_get(server, client):
    from gradio_client import Client

    inputs = [EXAMPLES[i % 2] for i in range(16)]  # identical inputs at the same time, the risky case
    serial = {p: classify(client, p) for p in set(inputs)}

    def one(path):
        return classify(Client(server, verbose=False), path)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, inputs))
    for path, (label, sheet, notice, captions) in zip(inputs, results):
        ref = serial[path]
        assert label == ref[0] and notice == ref[2] and captions == ref[3]
        # the answer's picture arrived whole and equal to the serial answer's
        assert Image.open(sheet).tobytes() == Image.open(ref[1]).tobytes()


def _dropdown_names(url):
    config = json.loads(urllib.request.urlopen(url.rstrip("/") + "/config").read())
    dropdown = next(c for c in config["components"] if c.get("type") == "dropdown")
    return [name for _, name in dropdown["props"]["choices"]]


def test_weights_come_from_the_hub_repo_when_it_can_be_had(tmp_path):
    import shutil

    commit = "89abcdef0123456789abcdef0123456789abcdef"
    repo = tmp_path / "hub" / "models--alice--fmnist"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(ROOT / "checkpoints" / "basic_cnn", repo / "snapshots" / commit / "basic_cnn")
    with running_app(tmp_path / "app.log", FMNIST_HUB_REPO="alice/fmnist", HF_HUB_CACHE=str(tmp_path / "hub")) as url:
        assert _dropdown_names(url) == ["basic_cnn"]  # only what the repo holds
    assert "from the Hub repo `alice/fmnist`" in (tmp_path / "app.log").read_text()


def test_an_unreachable_hub_repo_falls_back_to_the_bundled_checkpoints(tmp_path):
    with running_app(tmp_path / "app.log", FMNIST_HUB_REPO="nobody/missing", HF_HUB_CACHE=str(tmp_path / "hub")) as url:
        names = _dropdown_names(url)
    bundled = [f.name for f in (ROOT / "checkpoints").iterdir() if (f / "model.safetensors").is_file()]
    assert sorted(names) == sorted(bundled)
    assert "using the bundled checkpoints" in (tmp_path / "app.log").read_text()


def test_about_tab_shows_the_checkpoints_own_results(server):
    config = json.loads(urllib.request.urlopen(server.rstrip("/") + "/config").read())
    text = "\n".join(str(c["props"].get("value", "")) for c in config["components"] if c.get("type") == "markdown")
    for metrics_file in (ROOT / "checkpoints").glob("*/metrics.json"):
        acc = json.loads(metrics_file.read_text())["test"]["accuracy"]
        assert f"| `{metrics_file.parent.name}` |" in text and f"{100 * acc:.2f} %" in text
    images = [c for c in config["components"] if c.get("type") == "image" and c["props"].get("value")]
    assert any("confusion_matrix" in json.dumps(c["props"]["value"]) for c in images)


def test_classify_is_an_mcp_tool_that_an_assistant_can_call(server):
    """python app.py serves classify as an MCP tool: the mcp Python client, over streamable HTTP at the address
    the server printed at start-up, lists it with its docstring and gets the top-3 for an example image."""
    import asyncio
    import base64
    import re

    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    printed = re.search(r"(http://\S+/gradio_api/mcp/?)", SERVER_LOG["path"].read_text())
    assert printed, SERVER_LOG["path"].read_text()[-2000:]
    image = "data:image/png;base64," + base64.b64encode(EXAMPLES[9].read_bytes()).decode()  # an ankle boot

    async def call():
        async with streamablehttp_client(printed.group(1)) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = (await session.list_tools()).tools
                tool = next(t for t in tools if t.name.endswith("classify"))
                result = await session.call_tool(tool.name, {"image": image, "model_name": "resnet"})
                return tool, result

    tool, result = asyncio.run(call())
    assert "Fashion-MNIST" in tool.description and "image" in tool.inputSchema["properties"]
    assert not result.isError, result
    text = " ".join(c.text for c in result.content if getattr(c, "text", None))
    assert "Ankle boot" in text, text[:2000]


def test_a_training_image_uploaded_as_itself_finds_itself_first(client, tmp_path):
    """Similar items: the gallery's own image comes back first, with its class, then 7 more."""
    from fmnist.serving.gallery import load_gallery

    gallery = load_gallery(ROOT / "checkpoints")
    path = tmp_path / "gallery_item.png"
    Image.fromarray(gallery.images[1234]).save(path)
    from fmnist.serving.answer import tile_box

    _, sheet, _, captions = classify(client, path)
    # the nearest item, first of the answer picture's row of 8 tiles, is the upload; the captions as text
    first = Image.open(sheet).convert("L").crop(tile_box(0)).resize((28, 28), Image.Resampling.NEAREST)
    assert np.array_equal(np.asarray(first), gallery.images[1234])
    parts = captions.split(" · ")
    assert len(parts) == 8 and parts[0].startswith(f"1. {CLASS_NAMES[int(gallery.labels[1234])]} (")


# ---------------------------------------------------------------------------------------------------
# The batch tab: many pictures or one zip, tagged through the fast path


def _tag_batch(client, paths, model=None):
    from gradio_client import handle_file

    return client.predict([handle_file(str(p)) for p in paths], model or default_model(client), api_name="/tag_batch")


def _csv_rows(path):
    import csv

    return list(csv.reader(open(path)))


def test_a_batch_of_pictures_gives_a_table_thumbnails_and_the_clis_csv(client, tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("a text file renamed .jpg")
    summary, table, gallery, csv_path = _tag_batch(client, EXAMPLES[:3] + [text])
    rows = _csv_rows(csv_path)
    assert rows[0] == ["file", "top1", "p1", "top2", "p2", "top3", "p3", "notice", "hint", "label"]
    assert [r[0] for r in rows[1:]] == [p.name for p in EXAMPLES[:3]] + ["notes.jpg"]
    for r, example in zip(rows[1:4], EXAMPLES[:3]):
        assert r[1] == CLASS_NAMES[int(example.name.split("_")[0])]
    assert rows[4][7].startswith("error:") and "not an image" in rows[4][7]
    assert table["data"] == rows[1:] and len(gallery) == 3 and "3 of 4" in summary


def test_a_batch_marks_a_garment_cut_by_the_edge_in_its_hint_column_and_caption(client, tmp_path):
    import numpy as np

    from fmnist.photo.render.cut import cut_photo

    trouser = np.asarray(Image.open(EXAMPLES[1]).convert("L"))
    cut_photo(trouser, 0.2, 3).save(tmp_path / "cut.jpg", quality=90)
    _, table, gallery, csv_path = _tag_batch(client, [EXAMPLES[1], tmp_path / "cut.jpg"])
    rows = _csv_rows(csv_path)[1:]
    assert [r[8] for r in rows] == ["", "cut off"] and table["data"] == rows
    captions = [item["caption"] for item in gallery]
    assert "✂" not in captions[0] and "✂" in captions[1] and captions[1].endswith("cut.jpg"), captions


def test_a_zip_is_tagged_member_by_member(client, tmp_path):
    members = {f"shop/{p.name}": p.read_bytes() for p in EXAMPLES[3:6]}
    _, _, gallery, csv_path = _tag_batch(client, [zip_of(tmp_path / "catalogue.zip", members)])
    rows = _csv_rows(csv_path)[1:]
    assert [r[0] for r in rows] == list(members) and len(gallery) == 3
    assert all(r[1] == CLASS_NAMES[int(name.split("/")[1][0])] for r, name in zip(rows, members))


def test_checked_labels_download_as_csv_and_export_as_a_dataset_and_a_wrong_name_is_refused(client, tmp_path):
    """The batch tab: a person types labels into the table; a wrong name is refused on its row; the corrected
    CSV keeps every answer beside the labels; Export is the dataset `python -m fmnist.dataset build` makes."""
    import io
    import zipfile

    from gradio_client import handle_file

    from fmnist.tag.core import CSV_HEADER

    members = {f"shop/{p.name}": p.read_bytes() for p in EXAMPLES[:3]}
    _, table, _, csv_path = _tag_batch(client, [zip_of(tmp_path / "shop.zip", members)])
    rows = [list(r) for r in table["data"]]
    rows[0][-1], rows[1][-1], rows[2][-1] = "t-shirt/top", "jumper", "skip"
    edited = {"headers": CSV_HEADER, "data": rows}
    with pytest.raises(Exception, match=r"row 2 \(shop/1_trouser_test2.png\): 'jumper' is not a class"):
        client.predict(edited, handle_file(csv_path), api_name="/corrected_csv")
    rows[1][-1] = "Trouser"
    summary, corrected = client.predict(edited, handle_file(csv_path), api_name="/corrected_csv")
    assert "2 pictures labelled, 1 skipped" in summary
    got = _csv_rows(corrected)
    assert got[0] == CSV_HEADER and [r[-1] for r in got[1:]] == ["t-shirt/top", "Trouser", "skip"]
    assert [r[:-1] for r in got[1:]] == [r[:-1] for r in table["data"]]  # the model's answers, as they were
    summary, archive = client.predict(edited, handle_file(csv_path), api_name="/export_dataset")
    assert "Exported 2 labelled pictures" in summary
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        metadata = z.read("fmnist-tags/train/metadata.csv").decode()
        card = z.read("fmnist-tags/README.md").decode()
    assert {"fmnist-tags/train/0_t-shirt-top_test19.png", "fmnist-tags/train/1_trouser_test2.png"} <= names
    import csv

    labels = {r["file_name"]: r["label"] for r in csv.DictReader(io.StringIO(metadata))}
    assert labels == {"0_t-shirt-top_test19.png": "T-shirt/top", "1_trouser_test2.png": "Trouser"}
    assert "image-classification" in card and "1 marked `skip`" in card


@pytest.mark.parametrize(
    "kind,message",
    [
        ("empty", "holds no files"),
        ("bomb", "would unpack to"),
        ("traversal", "unsafe path"),
        ("too many", "over the limit of 500"),
    ],
)
def test_bad_zips_are_refused_before_extraction_and_the_server_keeps_serving(client, tmp_path, kind, message):
    import zipfile

    path = tmp_path / f"{kind.replace(' ', '_')}.zip"
    if kind == "empty":
        zip_of(path, {})
    elif kind == "bomb":  # 300 MB of zeros, a few hundred KB compressed
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            with z.open("bomb.png", "w", force_zip64=True) as f:
                chunk = b"\0" * (1 << 20)
                for _ in range(300):
                    f.write(chunk)
    elif kind == "traversal":
        zip_of(path, {"ok.png": EXAMPLES[0].read_bytes(), "../../etc/evil.png": EXAMPLES[1].read_bytes()})
    else:
        zip_of(path, {f"{i}.png": EXAMPLES[0].read_bytes() for i in range(1000)})
    with pytest.raises(Exception, match=message):
        _tag_batch(client, [path])
    assert not (tmp_path.parent / "etc").exists()
    label, *_ = classify(client, EXAMPLES[1])  # and the next request is served
    assert label["label"] == "Trouser"


def test_a_single_picture_is_answered_while_a_batch_runs(client, server, tmp_path):
    """The batch has its own concurrency limit and one worker process: a single request sent while a batch
    of 60 pictures is being tagged comes back, right, while the batch still runs on the server, not queued
    behind it. Checked by order (the batch's state on the server when the single answer is in), not by a time
    limit. 60 pictures keep the batch busy for about 20 s, against well under 1 s for the single request
    alone (30 ended first on an idle machine); 200 proved no more and cost a minute of the suite."""
    import time

    from gradio_client import Client, handle_file

    photo = io.BytesIO()
    backdrop = Image.new("RGB", (640, 480), (205, 200, 192))
    backdrop.paste(Image.open(EXAMPLES[7]).convert("L").resize((300, 300)).point(lambda v: 255 - v), (170, 90))
    backdrop.save(photo, "JPEG", quality=90)
    batch = zip_of(tmp_path / "sixty.zip", {f"{i:03d}.jpg": photo.getvalue() for i in range(60)})
    job = Client(server, verbose=False).submit([handle_file(str(batch))], default_model(client), api_name="/tag_batch")
    # the server's states: STARTING, PROCESSING for a moment, PROGRESS while the batch reports its pictures,
    # FINISHED (job.done() comes later still, once the client has fetched the batch's files)
    running = ("PROCESSING", "PROGRESS")
    deadline = time.time() + 60
    while job.status().code.name not in (*running, "FINISHED") and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # well inside the batch's own work
    assert job.status().code.name in running, (
        "the batch ended before the single request was sent: the test proved nothing"
    )
    t0 = time.perf_counter()
    label, *_ = classify(client, EXAMPLES[9])
    single_s = time.perf_counter() - t0
    batch_state = job.status().code.name
    assert label["label"] == "Ankle boot", label
    assert batch_state in running, (
        f"the single answer came after the batch ended ({single_s:.1f} s): it was queued behind it"
    )
    *_, csv_path = job.result(timeout=300)
    assert len(_csv_rows(csv_path)) == 61


def test_answer_files_older_than_their_age_are_removed_at_most_every_few_seconds(monkeypatch):
    import os
    import time

    from fmnist.serving import outputs as answers

    outputs = answers.OutputFiles()
    old = outputs.dir / "gradcam-old.png"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - answers.OUTPUT_MAX_AGE_S - 5,) * 2)
    outputs.save(Image.new("L", (4, 4)), "input")  # the first save looks
    assert not old.exists()
    old.write_bytes(b"x")
    os.utime(old, (time.time() - answers.OUTPUT_MAX_AGE_S - 5,) * 2)
    outputs.save(Image.new("L", (4, 4)), "input")  # the next, within PRUNE_EVERY_S, does not scan again
    assert old.exists()
    monkeypatch.setattr(answers, "PRUNE_EVERY_S", 0)
    outputs.save(Image.new("L", (4, 4)), "input")
    assert not old.exists() and len(list(outputs.dir.iterdir())) == 3


def test_the_readmes_gradio_client_snippet_runs_against_the_server(server, monkeypatch, capsys):
    """The README's "From Python" snippet, word for word but for the server's address, run as a user would."""
    import re

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert 'Client("http://127.0.0.1:7860/")' in code
    monkeypatch.chdir(ROOT)
    namespace = {}
    exec(code.replace("http://127.0.0.1:7860/", server), namespace)
    assert namespace["top3"]["label"] == "Ankle boot" and len(namespace["top3"]["confidences"]) >= 3
    assert not namespace["notice"] and Path(namespace["answer"]).is_file()
    assert "\nAnkle boot [('Ankle boot', " in capsys.readouterr().out  # after gradio_client's "Loaded as API"


# Hostile input through the server (the same inputs without a server: test_hostile.py)


def _status_kb(pid: int, field: str) -> int:
    return int(next(line for line in open(f"/proc/{pid}/status") if line.startswith(field)).split()[1])


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/PID/clear_refs")
def test_lying_zips_of_every_method_leave_the_servers_memory_as_it_was(client, server, tmp_path):
    """A 1.3 KB bzip2 zip once took 3.1 GB of the server's memory. Each zip here holds a 512 MB member (64 MB
    stored) whose directory claims 1,000 bytes; the server's peak memory, reset first, grows by less than
    300 MB over all four, each member's row says why, and the next request is answered."""
    from hostile import METHODS, lying_zip

    pid = SERVER_PROCESS[0].pid
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # resets the peak resident size (VmHWM) to the present one
    before = _status_kb(pid, "VmHWM")
    for name, method in METHODS.items():
        path = lying_zip(tmp_path / f"{name}.zip", method, 64 if name == "stored" else 512)
        summary, table, gallery, _ = _tag_batch(client, [path])
        assert "0 of 1" in summary and "directory says" in table["data"][0][7] and not gallery
    assert (_status_kb(pid, "VmHWM") - before) / 1024 < 300
    label, *_ = classify(client, EXAMPLES[1])
    assert label["label"] == "Trouser"


def test_one_bad_picture_is_its_own_row_and_the_rest_of_the_batch_is_tagged(client, tmp_path):
    """17 pictures (enough for the worker process) with a PNG whose zTXt chunk inflates to 2 MB, and a PDF:
    that batch once came back as one error and no rows."""
    from hostile import png_with_ztxt

    (tmp_path / "bomb.png").write_bytes(png_with_ztxt())
    (tmp_path / "catalogue.pdf").write_bytes(b"%PDF-1.4 not a picture")
    files = EXAMPLES + EXAMPLES[:5] + [tmp_path / "bomb.png"] + EXAMPLES[5:7] + [tmp_path / "catalogue.pdf"]
    summary, table, gallery, csv_path = _tag_batch(client, files)
    rows = _csv_rows(csv_path)[1:]
    assert [r[0] for r in rows] == [p.name for p in files] and len(gallery) == 17
    assert "colour profile" in rows[15][7] and "not an image" in rows[18][7]
    assert all(r[1] for k, r in enumerate(rows) if k not in (15, 18)) and "17 of 19" in summary


def test_classify_answers_a_decoders_error_with_a_sentence(client, tmp_path):
    from hostile import png_with_ztxt

    (tmp_path / "bomb.png").write_bytes(png_with_ztxt())
    with pytest.raises(Exception, match="text or a colour profile") as refused:
        classify(client, tmp_path / "bomb.png")
    assert "MAX_TEXT_CHUNK" not in str(refused.value) and "Traceback" not in str(refused.value)


def _children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for t in tasks.iterdir() for c in (t / "children").read_text().split()]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_a_killed_tagging_worker_is_replaced_and_the_next_batch_is_tagged(client, tmp_path):
    """The batch tab's worker process killed between two batches (as the out-of-memory killer would): every
    later batch failed until a restart. Now the pool is rebuilt and the batch retried."""
    import signal

    files = EXAMPLES * 2  # 20 pictures: the worker path
    summary, *_ = _tag_batch(client, files)
    assert "20 of 20" in summary
    workers = _children(SERVER_PROCESS[0].pid)
    assert workers, "the batch started no worker process"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    summary, table, *_ = _tag_batch(client, files)
    assert "20 of 20" in summary and all(r[1] for r in table["data"])
    assert not set(_children(SERVER_PROCESS[0].pid)) & set(workers)


def test_the_heat_map_panel_names_its_method_and_its_faithfulness(client):
    """The third panel's title band, as the server drew it, is the one answer_sheet draws with the method
    recorded for the model and its deletion score beside a random map's (and not the one it draws with
    another method's title)."""
    from fmnist.explain.maps import NAMES, map_note, map_title
    from fmnist.serving.answer import HEAD, answer_sheet, panel_box
    from fmnist.serving.predict import Predictor

    predictor = Predictor.from_source(ROOT / "checkpoints", only=default_model(client))
    model = predictor.models[default_model(client)].model
    title, note = map_title(model), map_note(model)
    assert NAMES[model.explanation["method"]] in title and note.startswith("deletion ") and "(random map " in note
    _, sheet, _, _ = classify(client, EXAMPLES[0])
    p = predictor.predict(EXAMPLES[0])
    left = panel_box(2)[0]

    def band(image):
        return np.asarray(image.convert("RGB").crop((left, 0, left + 224, HEAD)))

    served = band(Image.open(sheet))
    assert np.array_equal(served, band(answer_sheet(p.found, p.model_input, p.overlay, p.similar, title, note)))
    other = "Where it looked: " + next(n for m, n in NAMES.items() if m != model.explanation["method"])
    assert not np.array_equal(served, band(answer_sheet(p.found, p.model_input, p.overlay, p.similar, other, note)))


def test_a_batch_that_names_one_picture_twice_is_tagged_and_exports(client, tmp_path):
    """Two files of one name in a batch: both rows tagged, and the export keeps the first picture of the name."""
    import shutil

    from gradio_client import handle_file

    from fmnist.tag.core import CSV_HEADER

    (tmp_path / "a").mkdir()
    twin = shutil.copy(EXAMPLES[1], tmp_path / "a" / EXAMPLES[1].name)
    _, table, _, csv_path = _tag_batch(client, [EXAMPLES[1], twin, EXAMPLES[2]])
    rows = [list(r) for r in table["data"]]
    assert len(rows) == 3 and rows[0][0] == rows[1][0]
    rows[0][-1], rows[2][-1] = "Trouser", "Pullover"
    summary, archive = client.predict(
        {"headers": CSV_HEADER, "data": rows}, handle_file(csv_path), api_name="/export_dataset"
    )
    assert "Exported 2 labelled pictures" in summary
