"""The README and docs/ say what is true: every `python train.py ...` and `python -m fmnist|benchmarks|scripts...`
command in them imports from the repository root and parses with the real parsers, the models table is what the
files say, and the README stays short."""

import argparse
import importlib
import re
import shlex
import sys

import pytest

from conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"python (train\.py|-m (?:fmnist|benchmarks|scripts)[\w.]*)((?:[^`\n#]|\\\n)*)")


def commands() -> list[tuple[str, str, list[str]]]:
    found = []
    for path in DOCS:
        text = path.read_text().replace("\\\n", " ")
        for m in COMMAND.finditer(text):
            args = m.group(2).strip().rstrip(")").replace("[", " ").replace("]", " ")
            # a pipe, a second command or the end of an HTML comment ends the command
            args = shlex.split(args.split(" | ")[0].split(";")[0].split("-->")[0])
            placeholder = m.group(1).rsplit(".", 1)[-1].isupper()  # `python -m benchmarks.NAME` in prose
            if not placeholder and (args or not m.group(1).startswith("-m fmnist")):
                # a bare `python -m fmnist.tag` in prose names the program; a bare benchmark runs with its defaults
                found.append((path.name, m.group(1), args))
    return found


class Parsed(Exception):
    pass


def test_the_docs_name_commands():
    names = {(doc, target) for doc, target, _ in commands()}
    assert ("README.md", "train.py") in names and len(commands()) >= 20


@pytest.mark.parametrize("doc,target,args", commands(), ids=lambda v: v if isinstance(v, str) else " ".join(v)[:60])
def test_every_command_in_the_docs_parses(doc, target, args, monkeypatch):
    if target == "train.py":
        import train

        train.parse_args(args)  # argparse exits 2 on a flag or value it does not know
        return
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, argv=None, namespace=None):
        original(self, argv, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", [target, *args])  # every main() reads its flags from there by default
    module = importlib.import_module(target.removeprefix("-m "))  # from the repository root, as the docs run it
    with pytest.raises(Parsed):
        module.main()


def test_the_models_table_is_what_the_files_say():
    from scripts import readme_table

    readme = (ROOT / "README.md").read_text()
    assert readme_table.BEGIN in readme and readme_table.with_table(readme) == readme
    for row in readme_table.rows():
        assert f"{100 * row['accuracy']:.2f} %" in readme and f"{row['parameters']:,}" in readme
    training = (ROOT / "docs" / "training.md").read_text()
    assert readme_table.with_metrics_table(training) == training
    assert readme_table.main(["--check"]) == 0


def test_the_readme_is_short():
    body = (ROOT / "README.md").read_text().split("\n---\n", 1)[1]
    assert len(body.strip().splitlines()) <= 200


LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)\s#]+)")  # a relative [text](path) or ![alt](path)


def test_every_relative_link_and_picture_in_the_docs_is_a_file():
    """Relative to the document that links it, as GitHub and the Space resolve it."""
    broken = [
        (doc.name, target)
        for doc in DOCS + [ROOT / "CHANGELOG.md"]
        for target in LINK.findall(doc.read_text())
        if not (doc.parent / target).is_file()
    ]
    assert broken == []


def test_every_document_in_docs_is_linked_from_the_readme():
    linked = set(LINK.findall((ROOT / "README.md").read_text()))
    assert [doc.name for doc in DOCS[1:] if f"docs/{doc.name}" not in linked] == []
