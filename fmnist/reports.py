"""Result tables and the files rebuilt from an output folder after each model: results.json and the model card."""

from __future__ import annotations

from pathlib import Path

from . import checkpoint


def record_outputs(out: Path) -> None:
    """results.json and the model card, rebuilt from the model folders as they now are."""
    from .hub import write_model_card

    checkpoint.write_results(out)
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
