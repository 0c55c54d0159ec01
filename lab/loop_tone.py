"""Does a shop's gap come from a steady shift in tone that a curve fitted on its corrected pictures undoes?

    python -m lab.loop_tone [--seed 0] [--check 600] [--renderer opaque] [--out loop-tone-val]

The shop of lab.loop_recipe (validation items photographed by the held-out `opaque` renderer, 210 corrected
pictures to learn from, 600 other check pictures). The bundled model stays frozen; in front of it, a monotone
tone curve of the 28x28 (eight linear pieces, black kept black, starting as the identity) is fitted to the
corrected pictures by cross-entropy. Before and after: the check pictures, the corrected ones, and 3,000 unused
validation items as 28x28 (which the curve would meet too). Results go to lab/results/<out>-cpu.json.
"""

import argparse

import torch
import torch.nn.functional as F

from fmnist.checkpoints import store
from fmnist.data import load_splits
from lab._common import ROOT, record
from lab.loop_recipe import shop

PIECES = 8
STEPS = 150


class ToneCurve(torch.nn.Module):
    """A monotone curve on [0, 1] with f(0) = 0, piecewise linear over PIECES equal steps; the identity at start."""

    def __init__(self):
        super().__init__()
        self.raw = torch.nn.Parameter(torch.zeros(PIECES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rises = F.softplus(self.raw) / F.softplus(torch.zeros(PIECES))
        knots = torch.cat([torch.zeros(1), torch.cumsum(rises, 0) / PIECES])
        pos = x.clamp(0, 1) * PIECES
        i = pos.floor().clamp(max=PIECES - 1).long()
        t = pos - i
        return (knots[i] * (1 - t) + knots[i + 1] * t).clamp(0, 1)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check", type=int, default=600)
    p.add_argument("--renderer", default="opaque")
    p.add_argument("--out", default="loop-tone-val")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    splits = load_splits(allow_download=False)
    mine, check, check_px, unused = shop(splits, args.seed, args.check, args.renderer)
    groups = {
        "check pictures": (torch.as_tensor(check_px), splits.val.labels[check]),
        "corrected pictures": (mine.images, mine.labels),
        "unused validation items": (splits.val.images[unused][:3000], splits.val.labels[unused][:3000]),
    }
    model, _ = store.load_folder(ROOT / "checkpoints" / "resnet")
    model.eval()
    for p_ in model.parameters():
        p_.requires_grad_(False)
    curve = ToneCurve()

    def accuracy(pixels, labels) -> float:
        with torch.no_grad():
            x = pixels.float().div(255).unsqueeze(1)
            return float((torch.cat([model(curve(b)) for b in x.split(512)]).argmax(1) == labels).float().mean())

    rows = [{"curve": "identity", **{g: round(100 * accuracy(*v), 2) for g, v in groups.items()}}]
    opt = torch.optim.Adam(curve.parameters(), 0.05)
    x, y = mine.images.float().div(255).unsqueeze(1), mine.labels
    for _ in range(STEPS):
        loss = F.cross_entropy(model(curve(x)), y) + 1e-3 * curve.raw.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        knots = [round(v, 3) for v in curve(torch.linspace(0, 1, PIECES + 1)).tolist()]
    rows.append({"curve": "fitted", **{g: round(100 * accuracy(*v), 2) for g, v in groups.items()}})
    for r in rows:
        print(r)
    meta = {"renderer": args.renderer, "seed": args.seed, "steps": STEPS, "fitted_curve": knots}
    print(f"({record(args.out, rows, torch.device('cpu'), meta)})")


if __name__ == "__main__":
    main()
