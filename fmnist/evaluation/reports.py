"""Result tables and the files rebuilt from an output folder after each model: results.json and the model card."""

from __future__ import annotations

import json
from pathlib import Path

from fmnist.checkpoints import store


def record_outputs(out: Path) -> None:
    """results.json and the model card, rebuilt from the model folders as they now are."""
    from fmnist.checkpoints.hub import write_model_card

    store.write_results(out)
    write_model_card(out)


def format_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A Markdown table: columns are (key, header, format)."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = [
        "| " + " | ".join(format(r[k], f) if r.get(k) is not None else "" for k, _, f in columns) + " |" for r in rows
    ]
    return "\n".join([head, sep, *body])


RESULT_COLUMNS = [
    ("model", "model", ""),
    ("test_acc", "test acc", ".4f"),
    ("macro_f1", "macro F1", ".4f"),
    ("mcc", "MCC", ".4f"),
    ("log_loss", "log loss", ".4f"),
    ("ece_before", "ECE raw", ".4f"),
    ("ece_after", "ECE calibrated", ".4f"),
    ("epochs", "epochs", "d"),
    ("best_epoch", "best epoch", "d"),
    ("s_per_epoch", "s/epoch", ".1f"),
    ("params", "params", ",d"),
]


def overview(out: Path) -> str:
    """One table of every network and baseline recorded in out/: test accuracy and time to train ("" if none)."""
    rows = []
    for r in json.loads((out / "results.json").read_text()) if (out / "results.json").is_file() else []:
        rows.append(
            {
                "model": r["model"],
                "kind": "network",
                "test_acc": r["test_acc"],
                "train_s": r["s_per_epoch"] * r["epochs"],
            }
        )
    for r in json.loads((out / "baselines.json").read_text()) if (out / "baselines.json").is_file() else []:
        rows.append(
            {"model": r["model"], "kind": "scikit-learn", "test_acc": r["test_acc"], "train_s": r["fit_seconds"]}
        )
    if not rows:
        return ""
    rows.sort(key=lambda r: -r["test_acc"])
    return f"\nAll models in {out}/ (test accuracy; training or fit time):\n" + format_table(
        rows,
        [
            ("model", "model", ""),
            ("kind", "kind", ""),
            ("test_acc", "test acc", ".4f"),
            ("train_s", "train s", ".0f"),
        ],
    )
