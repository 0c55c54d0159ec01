"""The tables the docs take from files, written by code: the README's models table (each bundled model's
metrics.json and weights in checkpoints/, the latency and photo benchmarks' results in benchmarks/results/) and
docs/training.md's metrics table (metrics.json and config.json), docs/photos.md's photo benchmark table and
docs/explain.md's faithfulness and pointing tables.

    python -m scripts.readme_table            # rewrite the tables between their markers
    python -m scripts.readme_table --check    # exit 1 when a table differs from the files
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from fmnist.explain import maps

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- models-table: python -m scripts.readme_table -->", "<!-- /models-table -->"
METRICS_BEGIN, METRICS_END = "<!-- metrics-table: python -m scripts.readme_table -->", "<!-- /metrics-table -->"
PHOTOS_BEGIN, PHOTOS_END = "<!-- photos-table: python -m scripts.readme_table -->", "<!-- /photos-table -->"
EXPLAIN_BEGIN, EXPLAIN_END = "<!-- explain-table: python -m scripts.readme_table -->", "<!-- /explain-table -->"
FAITHFULNESS = "benchmarks/results/faithfulness-cpu.json"
POINTING = "benchmarks/results/pointing-cpu.json"
NAMES = {  # the methods' names as fmnist.explain.maps gives them, and the baselines'
    **maps.NAMES,
    "random": "random smooth maps",
    "blob": "a blob at the centre",
    "brightness": "the image's brightness",
}
LEVELS = ("clean", "everyday", "hard", "textured", "pale")
LATENCY = "benchmarks/results/latency-cpu.json"
PHOTOS = "benchmarks/results/photos-cpu.json"
SMALL, LARGE = "28x28 example", "12 MP JPEG"


def rows(root: Path = ROOT) -> list[dict]:
    """One dict a bundled model, most accurate first."""
    latency = json.loads((root / LATENCY).read_text())["rows"]
    photos = json.loads((root / PHOTOS).read_text())["rows"]
    out = []
    for folder in sorted(p.parent for p in (root / "checkpoints").glob("*/metrics.json")):
        name = folder.name
        metrics = json.loads((folder / "metrics.json").read_text())
        config = json.loads((folder / "config.json").read_text())
        ms = {r["picture"]: r["p50_ms"] for r in latency if r["model"] == name}
        gaps = [r["gap"] for r in photos if r["model"] == name]
        explanation = folder / "explanation.json"
        explanation = json.loads(explanation.read_text()) if explanation.is_file() else None
        out.append(
            {
                "model": name,
                "accuracy": metrics["test"]["accuracy"],
                "parameters": metrics["parameters"],
                "explanation": explanation,
                "weights_mb": (folder / "model.safetensors").stat().st_size / 1e6,
                "dtype": config.get("weights_dtype", "float32"),
                "pretrained": bool(config.get("pretrained")),
                "ms_small": ms.get(SMALL),
                "ms_large": ms.get(LARGE),
                "photo_gap": 100 * sum(gaps) / len(gaps) if gaps else None,
                "photo_gap_worst": 100 * max(gaps) if gaps else None,
                "cells": len(gaps),
            }
        )
    return sorted(out, key=lambda r: -r["accuracy"])


def table(root: Path = ROOT) -> str:
    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    def heat_map(e):
        if e is None:
            return "n/a"
        return f"{NAMES[e['method']]}: {e['test'][e['method']]['deletion']:.2f} ({e['test']['random']['deletion']:.2f})"

    lines = [
        "| model | test accuracy | parameters | weights | ms, 28x28 | ms, 12 MP photo | photo gap: mean (worst) "
        "| heat map: deletion (random map) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows(root):
        name = f"`{r['model']}`" + (
            " (from scratch, not a transfer model)" if r["model"] == "mobilenet" and not r["pretrained"] else ""
        )
        lines.append(
            f"| {name} | {100 * r['accuracy']:.2f} % | {r['parameters']:,} | {r['weights_mb']:.1f} MB "
            f"({r['dtype']}) | {num(r['ms_small'], '.0f')} | {num(r['ms_large'], '.0f')} | "
            f"{num(r['photo_gap'], '.1f')} ({num(r['photo_gap_worst'], '.1f')}) points | "
            f"{heat_map(r['explanation'])} |"
        )
    cells = {r["cells"] for r in rows(root)}
    lines.append("")
    lines.append(
        f"*Test accuracy on the 10,000 test images (`checkpoints/*/metrics.json`); weights: the size of "
        f"`model.safetensors`; ms: p50 of one app request without the web server (`{LATENCY}`, "
        f"`python -m benchmarks.latency`); photo gap: 28x28 accuracy minus photo accuracy on the same "
        f"test items, the mean and the worst over the photo benchmark's {'/'.join(map(str, sorted(cells)))} "
        f"cells of renderer and level (`{PHOTOS}`, `python -m benchmarks.photos --per-class 30`); heat map: "
        f"the method the app shows and its deletion score on 300 test images (higher is better) beside "
        f"random smooth maps' (`checkpoints/*/explanation.json`, `python -m benchmarks.faithfulness "
        f"--write-choice`, [docs/explain.md](docs/explain.md)). This "
        f"table is written by `python -m scripts.readme_table`.*"
    )
    return "\n".join(lines)


def metrics_table(root: Path = ROOT) -> str:
    lines = [
        "| model | initialised from | macro F1 | MCC | log loss | ECE raw → calibrated | epochs (best) | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows(root):
        folder = root / "checkpoints" / r["model"]
        m = json.loads((folder / "metrics.json").read_text())
        config = json.loads((folder / "config.json").read_text())
        init = "ImageNet" if config.get("pretrained") else "random"
        if r["model"] == "mobilenet" and not config.get("pretrained"):
            init = "random (`--no-pretrained`): **not** a transfer model"
        lines.append(
            f"| `{r['model']}` | {init} | {m['test']['macro_avg']['f1-score']:.4f} | {m['test']['mcc']:.4f} "
            f"| {m['test']['log_loss']:.4f} | {m['test_ece_before_temperature']:.3f} → {m['test']['ece']:.3f} "
            f"| {m['epochs_run']} ({m['best_epoch']}) | `{command(r['model'], config)}` |"
        )
    return "\n".join(lines)


def photos_table(root: Path = ROOT) -> str:
    """The photo benchmark for the default (most accurate) model: accuracy, gap and notices per renderer and level,
    and the non-garments flagged."""
    result = json.loads((root / PHOTOS).read_text())
    name = rows(root)[0]["model"]
    cells = {(r["renderer"], r["level"]): r for r in result["rows"] if r["model"] == name}
    held_out = set(result.get("held_out", ["opaque"]))
    lines = ["| renderer | " + " | ".join(LEVELS) + " |", "|---" * (len(LEVELS) + 1) + "|"]
    for renderer in dict.fromkeys(r for r, _ in cells):
        out = []
        for level in LEVELS:
            c = cells.get((renderer, level))
            out.append(
                ""
                if c is None
                else f"{100 * c['photo_acc']:.1f} % ({100 * c['gap']:.1f} ± "
                f"{100 * c['gap_se']:.1f}; notices {100 * c['photo_flagged']:.1f} %)"
            )
        label = f"`{renderer}`" + (" (held out)" if renderer in held_out else "")
        lines.append(f"| {label} | " + " | ".join(out) + " |")
    raw = next(iter(cells.values()))
    flags = next((n for n in result.get("non_garments", []) if n["model"] == name), None)
    lines.append("")
    lines.append(
        f"*`{name}`, {result['items_per_cell']} test items a cell, the same items in every cell; their "
        f"28x28 accuracy is {100 * raw['raw_acc']:.1f} %. In brackets: the gap to 28x28 ± its standard "
        f"error, in points, and the share of pictures that got a notice. "
        + (
            f"Non-garment pictures flagged: {100 * flags['non_garments_flagged']:.1f} %"
            + (f" of {flags['non_garments']}" if "non_garments" in flags else "")
            + (
                f" (of the new kinds, fmnist.photo.render.strays: {100 * flags['new_non_garments_flagged']:.1f} %)"
                if flags.get("new_non_garments_flagged") is not None
                else ""
            )
            + f"; test items as "
            f"28x28: {100 * flags['test_items_flagged']:.1f} %; kinds not always flagged: "
            + (
                ", ".join(
                    f"{k.removeprefix('flagged_')} {100 * v:.0f} %"
                    for k, v in flags.items()
                    if k.startswith("flagged_") and v < 1
                )
                or "none"
            )
            + ". "
            if flags
            else ""
        )
        + f"From `{PHOTOS}` ({result['date']}), written by `python -m scripts.readme_table`.*"
    )
    return "\n".join(lines)


def explain_table(root: Path = ROOT) -> str:
    """docs/explain.md: every model, method and baseline on the test images, with 95 % bootstrap intervals and
    each method's time; the shown map in bold; then the pointing game on photos."""
    result = json.loads((root / FAITHFULNESS).read_text())
    lines = ["| model | map | deletion | insertion | ROAD | ms a picture |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if r["split"] != "test":
            continue
        name = NAMES[r["map"]] + (" (shown)" if r["chosen"] else "")
        cells = [
            f"{r[t + '_mean']:.3f} [{r[t + '_low']:.3f}, {r[t + '_high']:.3f}]"
            for t in ("deletion", "insertion", "road")
        ]
        if r["chosen"]:
            name, cells = f"**{name}**", [f"**{c}**" for c in cells]
        ms = "" if r["ms_per_image"] is None else f"{r['ms_per_image']:.1f}"
        lines.append(f"| `{r['model']}` | {name} | " + " | ".join(cells) + f" | {ms} |")
    lines.append("")
    # a model rerun alone (--models) leaves the others' rows as they were measured: say when and where
    runs = defaultdict(list)
    for model, m in result.get("measured", {}).items():
        runs[m["date"], m["hardware"], m["command"]].append(f"`{model}`")
    runs = runs or {(result["date"], result["hardware"], result["command"]): []}
    source = "; ".join(
        f"{', '.join(models) + ': ' if len(runs) > 1 else ''}{date}, {hw}, `{cmd}`"
        for (date, hw, cmd), models in runs.items()
    )
    lines.append(
        f"*{result['n']} test images a model, each explained for the class the model predicts; in brackets "
        f"the 95 % bootstrap interval ({result['boots']} resamples). Time: one 28x28 picture, one thread; "
        f"the shown map is the most faithful on {result['n']} validation images within "
        f"{result['time_budget_ms']:.0f} ms. From `{FAITHFULNESS}` ({source}), "
        f"written by `python -m scripts.readme_table`.*"
    )
    if (root / POINTING).is_file():
        pointing = json.loads((root / POINTING).read_text())
        maps = list(dict.fromkeys(r["map"] for r in pointing["rows"]))
        lines += ["", "| model | " + " | ".join(NAMES[m] for m in maps) + " |", "|---" * (len(maps) + 1) + "|"]
        for model in dict.fromkeys(r["model"] for r in pointing["rows"]):
            explanation = root / "checkpoints" / model / "explanation.json"
            shown = json.loads(explanation.read_text())["method"] if explanation.is_file() else None
            cells = {
                r["map"]: (f"**{100 * r['pointing']:.1f} %**" if r["map"] == shown else f"{100 * r['pointing']:.1f} %")
                for r in pointing["rows"]
                if r["model"] == model
            }
            lines.append(f"| `{model}` | " + " | ".join(cells[m] for m in maps) + " |")
        lines += [
            "",
            f"*The pointing game: the share of {pointing['per_renderer'] * len(pointing['levels'])} rendered "
            f"photos of test items ({pointing['per_renderer']} from each renderer) whose map's hottest point "
            f"lies on the garment the renderer drew, or within a pixel of it; the shown map in bold. From "
            f"`{POINTING}` ({pointing['date']}, `{pointing['command']}`).*",
        ]
    return "\n".join(lines)


def command(name: str, config: dict) -> str:
    """The train.py command that made a checkpoint: recorded, or rebuilt from its recorded TrainConfig."""
    from fmnist.training.config import command_for

    return config.get("command") or command_for(config["train_config"], name)


def replace_between(text: str, begin: str, end: str, body: str) -> str:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}\n{end}{tail}"


def with_table(readme: str, root: Path = ROOT) -> str:
    return replace_between(readme, BEGIN, END, table(root))


def with_metrics_table(doc: str, root: Path = ROOT) -> str:
    return replace_between(doc, METRICS_BEGIN, METRICS_END, metrics_table(root))


def with_photos_table(doc: str, root: Path = ROOT) -> str:
    return replace_between(doc, PHOTOS_BEGIN, PHOTOS_END, photos_table(root))


def with_explain_table(doc: str, root: Path = ROOT) -> str:
    return replace_between(doc, EXPLAIN_BEGIN, EXPLAIN_END, explain_table(root))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    stale = []
    for path, write in (
        (ROOT / "README.md", with_table),
        (ROOT / "docs" / "training.md", with_metrics_table),
        (ROOT / "docs" / "photos.md", with_photos_table),
        (ROOT / "docs" / "explain.md", with_explain_table),
    ):
        text = path.read_text()
        new = write(text)
        if new != text:
            stale.append(path.relative_to(ROOT).as_posix())
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(
            f"{', '.join(stale)}: a table differs from checkpoints/ and benchmarks/results/; "
            f"run python -m scripts.readme_table"
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
