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
LAB = ROOT / "lab" / "README.md"
COMMAND = re.compile(r"python (train\.py|-m (?:fmnist|benchmarks|scripts|lab)[\w.]*)((?:[^`\n#]|\\\n)*)")


def commands() -> list[tuple[str, str, list[str]]]:
    found = []
    for path in DOCS:  # the lab's commands ran at the commits its README names: their modules are checked below
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

        try:
            train.parse_args(args)  # argparse exits 2 on a flag or value it does not know
        except SystemExit as e:
            assert e.code == 0 and "--help" in args  # --help prints and exits 0
        return
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, argv=None, namespace=None):
        original(self, argv, namespace)
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    monkeypatch.setattr(sys, "argv", [target, *args])  # every main() reads its flags from there by default
    name = target.removeprefix("-m ")
    module = importlib.import_module(name)  # from the repository root, as the docs run it
    if not hasattr(module, "main"):  # a package run as a program: its __main__ module
        module = importlib.import_module(f"{name}.__main__")
    if "--help" in args:
        with pytest.raises(SystemExit) as e:
            module.main()
        assert e.value.code == 0
        return
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


RESULT_PATH = re.compile(r"\b((?:benchmarks/results|lab/results|lab/figures)/[\w.*-]+\.(?:json|jpg|png))")
RESULT_NAME = re.compile(r"`([\w-]+-(?:cpu|cuda|metrics)\.json)`")  # a bare result file's name


def test_every_result_file_the_docs_cite_exists():
    """A path under benchmarks/results/ or lab/, or a bare result name found in one of those folders."""
    missing = []
    for doc in [*DOCS, LAB]:
        text = doc.read_text()
        for path in RESULT_PATH.findall(text):
            if not list(ROOT.glob(path)):
                missing.append((doc.name, path))
        for name in RESULT_NAME.findall(text):
            if not any((ROOT / folder / name).is_file() for folder in ("benchmarks/results", "lab/results")):
                missing.append((doc.name, name))
    assert missing == []


MODULE = re.compile(r"python -m ((?:benchmarks|lab|fmnist|scripts)(?:\.\w+)+)")


def test_every_module_a_document_runs_exists():
    """`python -m benchmarks.X` and `python -m lab.X` (and the package's) name a module that is there, in every
    document, the lab's README and the CHANGELOG's latest entry included."""
    import importlib.util

    latest = (ROOT / "CHANGELOG.md").read_text().split("\n## ")[1]
    texts = [(doc.name, doc.read_text()) for doc in [*DOCS, LAB]] + [("CHANGELOG.md", latest)]
    missing = [
        (name, module)
        for name, text in texts
        for module in set(MODULE.findall(text))
        if not module.rsplit(".", 1)[-1].isupper() and importlib.util.find_spec(module) is None
    ]
    assert missing == []


HISTORY = re.compile(
    r"\b(today|of then|that day|so far|no longer|until now|as of now|these days|at the time)\b|→ now",
    re.IGNORECASE,
)


def test_the_docs_describe_what_is_not_its_history():
    """History goes to CHANGELOG.md and experiments to lab/README.md; README and docs/ say what is."""
    found = [(doc.name, m.group(0)) for doc in DOCS for m in HISTORY.finditer(doc.read_text())]
    assert found == []


def test_the_long_documents_stay_readable():
    for name in ("training.md", "photos.md"):
        assert len((ROOT / "docs" / name).read_text().splitlines()) <= 250, name


def test_nothing_shipped_imports_the_lab_or_the_benchmarks():
    """fmnist/, app.py, train.py, scripts/ and tests/ import neither lab/ nor benchmarks/."""
    files = [ROOT / "app.py", ROOT / "train.py"]
    files += [p for folder in ("fmnist", "scripts", "tests") for p in (ROOT / folder).rglob("*.py")]
    pattern = re.compile(r"^\s*(?:from|import)\s+(lab|benchmarks)\b", re.MULTILINE)
    assert [str(p.relative_to(ROOT)) for p in files if pattern.search(p.read_text())] == []
