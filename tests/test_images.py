"""open_image: every bad file a user may bring is refused with a reason; odd modes become RGB."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.images import BOMB_PIXELS, ImageError, open_image


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _png_header_claiming(width: int, height: int) -> bytes:
    """A syntactically valid PNG whose header claims a huge size (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


@pytest.fixture()
def photo(small_catalog) -> Path:
    return small_catalog / "images" / "img0000.jpg"


def test_a_generated_photo_opens_as_rgb(photo):
    img = open_image(photo)
    assert img.mode == "RGB" and img.size == (512, 768)
    assert open_image(photo.read_bytes()).size == (512, 768)  # bytes work the same as a path


@pytest.mark.parametrize("make, reason", [
    (lambda p: b"", "empty"),
    (lambda p: b"name,item_id\nx,1\n", "not_an_image"),
    (lambda p: p.read_bytes()[: len(p.read_bytes()) // 2], "truncated"),
    (lambda p: _png_bytes(Image.open(p))[:3000], "truncated"),
    (lambda p: _png_header_claiming(20_000, 20_000), "decompression_bomb"),   # > 2x Pillow's limit: error
    (lambda p: _png_header_claiming(11_000, 10_000), "decompression_bomb"),   # > Pillow's limit: warning
])
def test_bad_files_are_refused_with_a_reason_and_a_friendly_message(tmp_path, photo, make, reason):
    bad = tmp_path / "upload.jpg"  # the name says JPEG; the type is detected by content
    bad.write_bytes(make(photo))
    with pytest.raises(ImageError) as err:
        open_image(bad, max_pixels=10**12)
    assert err.value.reason == reason
    assert "upload.jpg" in str(err.value) and len(str(err.value)) > 30
    with pytest.raises(ImageError) as err2:
        open_image(bad.read_bytes(), max_pixels=10**12)  # same verdict for uploaded bytes
    assert err2.value.reason == reason
    with pytest.raises(ImageError) as err3:
        open_image(bad, max_pixels=10**12, draft=True)  # the catalogue's quicker check: same verdict
    assert err3.value.reason == reason


def test_draft_check_reads_a_good_jpeg_at_an_eighth_of_its_size(photo):
    small = open_image(photo, draft=True)
    assert small.mode == "RGB" and small.size == (64, 96)
    assert open_image(photo).size == (512, 768)  # without draft: every pixel


def test_pillow_bomb_limit_is_set_deliberately():
    assert Image.MAX_IMAGE_PIXELS == BOMB_PIXELS


def test_configured_pixel_and_byte_limits(photo):
    with pytest.raises(ImageError) as err:
        open_image(photo, max_pixels=512 * 768 - 1)
    assert err.value.reason == "too_many_pixels" and "max_image_pixels" in str(err.value)
    with pytest.raises(ImageError) as err:
        open_image(photo, max_bytes=1000)
    assert err.value.reason == "too_many_bytes" and "MB" in str(err.value)
    with pytest.raises(ImageError) as err:
        open_image(photo.read_bytes(), max_bytes=1000)
    assert err.value.reason == "too_many_bytes"
    assert open_image(photo, max_pixels=512 * 768).size == (512, 768)


def test_missing_file_is_unreadable(tmp_path):
    with pytest.raises(ImageError) as err:
        open_image(tmp_path / "gone.png")
    assert err.value.reason == "unreadable"


def test_odd_modes_become_rgb_with_transparency_on_white(tmp_path, photo):
    rgb = Image.open(photo).convert("RGB").resize((64, 96))
    cases = {
        "cmyk.jpg": rgb.convert("CMYK"),
        "palette.png": rgb.convert("P"),
        "gray.png": rgb.convert("L"),
        "la.png": rgb.convert("LA"),
        "rgba.png": rgb.convert("RGBA"),
    }
    arr16 = (np.asarray(rgb.convert("L"), np.uint16) * 257)
    cases["sixteen.png"] = Image.fromarray(arr16)
    for name, img in cases.items():
        path = tmp_path / name
        img.save(path)
        out = open_image(path)
        assert out.mode == "RGB" and out.size == (64, 96), name
        diff = np.abs(np.asarray(out, np.float32).mean(2) - np.asarray(rgb.convert("L"), np.float32)).mean()
        assert diff < 25, (name, diff)  # still the same picture
    # transparent pixels are composited on white, opaque ones kept
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 5:, 3] = 255
    for mode in ("RGBA", "LA"):
        img = Image.fromarray(rgba).convert(mode)
        out = np.asarray(open_image(_png_bytes(img)))
        assert (out[:, :5] == 255).all(), mode
        assert (out[:, 5:] != 255).any(), mode
    pal = Image.fromarray(rgba).convert("P")
    pal.info["transparency"] = 0
    assert np.asarray(open_image(_png_bytes(pal))).dtype == np.uint8


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif.tobytes(), quality=95)
    out = open_image(path)
    assert out.size == (20, 40)
    top = np.asarray(out)[:5].mean((0, 1))
    assert top[2] > 150 and top[0] < 100  # the blue strip is now at the top
