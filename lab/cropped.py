"""What a garment cut by the picture's edge costs: the same validation items photographed whole and with a part
of them outside the frame.

    python -m lab.cropped [--per-class 30] [--seed 1] [--out cropped]

A probe written apart from the photo benchmark's renderers, all of which keep the whole item in the frame: at
home a long dress's hem or a coat's sleeve is easily left out of a phone picture. Each item is drawn as the
same garment (any hue, value 0.25-0.9, its fabric darkened by the item's greys as a shop photo's) on a light
surface with a gentle light gradient, noise and JPEG. The whole picture is the `whole` cell; the same picture
with its frame cut on one side (drawn per item: top, bottom, left or right) through the item, so that 10 % or
20 % of the item's extent on that axis is outside the frame, gives the `cut 10 %` and `cut 20 %` cells. It
reports, for validation items only, the accuracy of the default model (`resnet`) through the app's pipeline and
the notices, per cut, beside the items as 28x28. Results go to lab/results/<out>-cpu.json.
"""

from fmnist.photo.render.cut import CUTS, cut_photo
from lab._probe import probe, save, variant_cells


def main():
    run = probe(__doc__, "cropped", 30)
    rows, _ = variant_cells(run, CUTS, "cut", cut_photo)
    for row in rows:
        row["share_outside"] = CUTS[row["cut"]]
    save(run, rows)


if __name__ == "__main__":
    main()
