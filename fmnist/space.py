"""Deploy the app as a Hugging Face Space, uploading only what a Space needs.

    python -m fmnist.space deploy USER/NAME                        # the app with the bundled checkpoints/
    python -m fmnist.space deploy USER/NAME --weights USER/MODEL   # the app with weights from a model repo
    python -m fmnist.space deploy USER/NAME --dry-run              # list what would be uploaded, upload nothing

It creates the Space (Gradio SDK) if it does not exist, stages the allowlisted files (ALLOW) in a temporary
folder, writes the README's front matter for the Space (naming the weights repo when one is given, and no repo
otherwise), sets FMNIST_HUB_REPO as a Space variable when weights are given, and uploads the folder in one
commit through huggingface_hub, which stores binary files in the Hub's large-file storage by itself. The files
the README links to or shows (its pictures, the docs it names, and what those show) go too, so that the Space's
page has none broken.
Nothing from .venv/, runs/, tests/, data/ or benchmarks/ is sent. The token comes from $HF_TOKEN or `hf auth login`.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

from fmnist import publish

ROOT = Path(__file__).resolve().parents[1]
# What a Space needs to run app.py: the app, the package, its requirements, the examples it offers and, unless
# the weights come from a model repo, the bundled checkpoints. Patterns are relative to the repository root.
ALLOW = ("app.py", "requirements.txt", "fmnist/**/*.py", "examples/**/*.png", "examples/**/*.jpg")
CHECKPOINTS = (
    "checkpoints/*.json",
    "checkpoints/*.md",
    "checkpoints/*.safetensors",
    "checkpoints/*/*.json",
    "checkpoints/*/*.safetensors",
    "checkpoints/*/*.png",
)
HUB_VARIABLE = "FMNIST_HUB_REPO"
# A relative link or picture in the README ([text](path) or ![alt](path)): the Space's page is its README.
README_LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)\s#]+)")


class DeployError(RuntimeError):
    """The Space cannot be deployed; the message says why (never with the token)."""


def space_files(root: Path = ROOT, with_checkpoints: bool = True) -> list[str]:
    """The repository paths a Space gets, sorted: ALLOW (and CHECKPOINTS) and what the README links to, never a
    cache or a hidden folder."""
    found = {rel for rel in readme_links(root) if _sendable(Path(rel))}  # literal paths, not glob patterns
    for pattern in ALLOW + (CHECKPOINTS if with_checkpoints else ()):
        for path in root.glob(pattern):
            rel = path.relative_to(root)
            if path.is_file() and _sendable(rel):
                found.add(rel.as_posix())
    return sorted(found)


def _sendable(rel: Path) -> bool:
    """Not inside a hidden folder or a cache."""
    return not any(p.startswith(".") or p == "__pycache__" for p in rel.parts)


def readme_links(root: Path = ROOT) -> list[str]:
    """The repository files the README links to or shows (its pictures, docs/*.md, CHANGELOG.md), and in turn
    what each linked Markdown document links to or shows (docs/photos.md's pictures), so that neither the
    Space's page, which is the README, nor a document it opens has a broken picture or link."""
    top = root.resolve()
    found, todo = set(), ["README.md"]
    while todo:
        doc = todo.pop()
        text = (top / doc).read_text() if (top / doc).is_file() else ""
        for target in README_LINK.findall(text):
            path = (top / doc).parent / target  # relative to the document that links it
            if not path.is_file() or not path.resolve().is_relative_to(top):
                continue
            rel = path.resolve().relative_to(top).as_posix()
            if rel not in found and rel != "README.md":
                found.add(rel)
                if rel.endswith(".md"):
                    todo.append(rel)
    return sorted(found)


def front_matter(readme: str, weights: str | None) -> str:
    """The README with its front matter made for the Space: `models` names the weights repo, or is left out."""
    from huggingface_hub import RepoCard

    card = RepoCard(readme)
    data = card.data.to_dict()
    data.pop("models", None)
    if weights:
        data["models"] = [weights]
    card.data = type(card.data)(**data)
    return str(card)


def stage(dest: Path, weights: str | None, root: Path = ROOT) -> list[str]:
    """Copy the Space's files into dest, with the README made for it; returns the paths staged."""
    files = space_files(root, with_checkpoints=weights is None)
    for rel in files:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / rel)
    (dest / "README.md").write_text(front_matter((root / "README.md").read_text(), weights))
    return sorted([*files, "README.md"])


def deploy(
    space_id: str,
    weights: str | None = None,
    private: bool = False,
    api=None,
    token: str | None = None,
    root: Path = ROOT,
) -> str:
    """Create (or update) the Space and upload the app; returns the Space's address."""
    if space_id.count("/") != 1 or not all(space_id.split("/")):
        raise DeployError(f"{space_id!r} is not a Space id: give USER/NAME")
    api, token = publish.client(token, api, DeployError, "deploy again")
    with tempfile.TemporaryDirectory(prefix="fmnist-space-") as tmp:
        staged = stage(Path(tmp), weights, root)
        with publish.told(DeployError, f"deploying {space_id}", token, "run the same command again"):
            api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
            if weights:
                api.add_space_variable(
                    space_id, HUB_VARIABLE, weights, description="the Hub model repo the app loads its weights from"
                )
            api.upload_folder(
                repo_id=space_id,
                repo_type="space",
                folder_path=tmp,
                commit_message=f"Deploy fmnist ({len(staged)} files)",
            )
    return f"https://huggingface.co/spaces/{space_id}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m fmnist.space", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="verb", required=True)
    d = sub.add_parser("deploy", help="create or update a Gradio Space running this app")
    d.add_argument("space_id", metavar="USER/NAME")
    d.add_argument(
        "--weights",
        metavar="USER/MODEL",
        help="a model repo pushed by `python train.py --push`: the Space loads its weights from there",
    )
    d.add_argument("--private", action="store_true")
    d.add_argument("--dry-run", action="store_true", help="list the files that would be uploaded, and stop")
    a = p.parse_args(argv)
    if a.dry_run:
        files = [*space_files(with_checkpoints=a.weights is None), "README.md"]
        print("\n".join(sorted(files)))
        print(f"{len(files)} files, {sum((ROOT / f).stat().st_size for f in files) / 1e6:.1f} MB")
        return 0
    try:
        print(deploy(a.space_id, a.weights, a.private))
    except DeployError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
