"""Decoding an upload (fmnist/photo/decode.py): every image mode and phone format, EXIF turns, and hostile
input refused with a reason before it is decoded."""

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import block_item, shop_photo
from fmnist.photo import MAX_PIXELS, ImageRejected, preprocess


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "CMYK", "I;16", "I", "F", "1", "RGB", "L"])
def test_any_image_mode(mode):
    photo = shop_photo(block_item())
    if mode == "I;16":
        img = Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257)
        assert img.mode == "I;16"
    elif mode == "RGBA":  # a cut-out: transparent background
        img = photo.convert("RGBA")
        a = np.asarray(img).copy()
        a[..., 3] = np.where(np.asarray(photo.convert("L")) > 250, 0, 255)
        a[a[..., 3] == 0, :3] = 0  # what is under the transparency must not matter
        img = Image.fromarray(a, "RGBA")
    else:
        img = photo.convert(mode)
    out = preprocess(img)
    assert out.pixels.shape == (28, 28) and out.pixels[14, 14] > 150 and out.pixels[0, 0] < 30


def test_exif_rotation_is_honoured():
    upright = shop_photo(block_item(h=24, w=6))  # a tall item
    rotated = upright.transpose(Image.Transpose.ROTATE_90)  # stored on its side...
    exif = Image.Exif()
    exif[0x0112] = 6  # ...with the EXIF tag that says: turn 90 degrees clockwise to view
    buf = io.BytesIO()
    rotated.save(buf, format="JPEG", exif=exif, quality=95)
    out = preprocess(Image.open(io.BytesIO(buf.getvalue())))
    rows = np.flatnonzero(out.pixels.max(1) > 60)
    cols = np.flatnonzero(out.pixels.max(0) > 60)
    assert len(rows) > 2 * len(cols)  # upright again: tall, not wide


def _png_bytes(img):
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_bad_inputs_are_refused_with_a_reason(tmp_path):
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "cut.png").write_bytes(_png_bytes(shop_photo(block_item()))[:2000])
    Image.new("L", (1, 1)).save(tmp_path / "dot.png")
    cases = {
        None: "No image",
        str(tmp_path / "notes.txt"): "not an image",
        str(tmp_path / "cut.png"): "truncated",
        str(tmp_path / "dot.png"): "1x1 pixels",
    }
    for source, reason in cases.items():
        with pytest.raises(ImageRejected, match=reason):
            preprocess(source)


def test_huge_and_bomb_images_are_refused_before_decoding(tmp_path):
    side = int(MAX_PIXELS**0.5) + 100
    Image.new("L", (side, side), 255).save(tmp_path / "huge.png")  # compresses to a few hundred kB
    with pytest.raises(ImageRejected, match="megapixel limit"):
        preprocess(str(tmp_path / "huge.png"))
    # a decompression bomb: a tiny file whose header claims 100,000 x 100,000 pixels
    data = bytearray(_png_bytes(Image.new("L", (10, 10))))
    data[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR width and height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # the chunk's CRC, so the header is valid
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    with pytest.raises(ImageRejected, match="too large|megapixel"):
        preprocess(str(tmp_path / "bomb.png"))


def _encoded(image: Image.Image, fmt: str, **kw) -> io.BytesIO:
    buf = io.BytesIO()
    image.save(buf, fmt, quality=92, **kw)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_phone_formats_classify_like_the_same_jpeg(fmt):
    """HEIC (through pillow-heif) and AVIF uploads give the model the same 28x28 as the JPEG."""
    photo = shop_photo(block_item(22, 12))
    want = preprocess(_encoded(photo, "JPEG")).pixels.astype(int)
    got = preprocess(_encoded(photo, fmt)).pixels.astype(int)
    assert np.abs(got - want).mean() < 3 and np.abs(got - want).max() < 60


def test_a_heic_with_an_exif_orientation_is_turned_upright():
    """Stored sideways with orientation 6 (turn 90 degrees clockwise to show): it comes out upright."""
    photo = shop_photo(block_item(24, 8), canvas=(300, 400), at=(40, 60))  # a tall item in a portrait picture
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = photo.transpose(Image.Transpose.ROTATE_90)  # what the phone's sensor wrote
    out = preprocess(_encoded(stored, "HEIF", exif=exif.tobytes()))
    upright = preprocess(photo)
    assert out.aspect > 2 and np.abs(out.pixels.astype(int) - upright.pixels.astype(int)).mean() < 3
