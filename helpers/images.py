"""Open any image a user may bring, or refuse it with a reason a person can act on.

Why one gate: the catalogue loader and the search app's upload box both receive files nobody
has checked (empty, truncated, not an image, enormous, 16-bit, CMYK, rotated by EXIF). Every
later step assumes a plain RGB `PIL.Image` the right way up, so all conversion happens here and
every refusal is an `ImageError` with a short `reason` code for failure tables and a friendly
message for people.
"""
from __future__ import annotations

import io
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from helpers.errors import ImageError

# Pillow's own decompression-bomb guard, set deliberately (Pillow's default is ~89 Mpx):
# anything above this many pixels is refused before it is decoded. `max_pixels` (from settings)
# is normally lower and is checked first with a clearer message.
BOMB_PIXELS = 100_000_000
Image.MAX_IMAGE_PIXELS = BOMB_PIXELS

# Truncated files must fail loudly, not load half grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False

DEFAULT_MAX_PIXELS = 40_000_000
DEFAULT_MAX_BYTES = 30_000_000

REASONS = ("empty", "not_a_file", "not_an_image", "truncated", "decompression_bomb", "too_many_pixels",
           "too_many_bytes", "unreadable")


def _read(source: Path | str | bytes, max_bytes: int) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "the uploaded image"
    else:
        path = Path(source)
        name = path.name
        try:
            st = path.stat()
        except OSError as exc:
            raise ImageError("unreadable", f"{name}: cannot be read ({exc.strerror or exc}). "
                             "Check that the file exists and is readable.") from None
        if not stat.S_ISREG(st.st_mode):  # a FIFO blocks for ever, /dev/zero never ends: never read them
            raise ImageError("not_a_file", f"{name}: is not a regular file ({_kind(st.st_mode)}), so it is "
                             "not read. Give the path of a photo file.")
        size = st.st_size
        if size > max_bytes:
            raise ImageError("too_many_bytes", f"{name}: the file is {size / 1e6:.1f} MB, above the "
                             f"{max_bytes / 1e6:.1f} MB limit. Resize or re-save it smaller "
                             "(or raise max_image_bytes in settings).")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageError("unreadable", f"{name}: cannot be read ({exc.strerror or exc}).") from None
    if len(data) == 0:
        raise ImageError("empty", f"{name}: the file is empty (0 bytes). Copy or download it again.")
    if len(data) > max_bytes:
        raise ImageError("too_many_bytes", f"{name}: the file is {len(data) / 1e6:.1f} MB, above the "
                         f"{max_bytes / 1e6:.1f} MB limit. Resize or re-save it smaller "
                         "(or raise max_image_bytes in settings).")
    return data, name


def _kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    for test, word in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return word
    return "not a file"


def _to_rgb(img: Image.Image) -> Image.Image:
    """Plain 8-bit RGB; transparency composited on white (how a shop page shows it)."""
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        img = Image.fromarray(((arr - lo) * scale).astype(np.uint8))
    if img.mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        white = Image.new("RGB", img.size, (255, 255, 255))
        white.paste(img, mask=img.getchannel("A"))
        return white
    return img.convert("RGB")


def open_image(source: Path | str | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_bytes: int = DEFAULT_MAX_BYTES, draft: bool = False) -> Image.Image:
    """Validate and decode an image file or bytes into RGB, EXIF orientation applied.

    The type is detected from the content, never the file name. Raises `ImageError`.
    `draft=True` is for checking, not for use: a JPEG is decoded at 1/8 scale, which still
    reads and checks every byte of the file (a truncated or corrupt one fails the same way)
    but skips most of the pixel work - half the time of a full decode.
    """
    data, name = _read(source, max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width * height > max_pixels:
                raise ImageError("too_many_pixels", f"{name}: {width}x{height} is {width * height / 1e6:.1f} "
                                 f"megapixels, above the {max_pixels / 1e6:.1f} Mpx limit. Resize it "
                                 "(or raise max_image_pixels in settings).")
            if draft and img.format == "JPEG":
                img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("decompression_bomb", f"{name}: claims to be enormous (more than "
                         f"{BOMB_PIXELS / 1e6:.0f} megapixels), which is how decompression bombs "
                         "look. It was not decoded. Use a normally sized image.") from None
    except UnidentifiedImageError:
        raise ImageError("not_an_image", f"{name}: is not an image Pillow can read (JPEG, PNG, "
                         "WebP, TIFF, BMP, GIF ...). Check the file, or convert it to JPEG or PNG.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        text = str(exc).lower()
        if "truncat" in text or "premature" in text or "end of file" in text or isinstance(exc, EOFError) \
                or "broken data stream" in text or "image file is truncated" in text:
            raise ImageError("truncated", f"{name}: the file is cut short (truncated), probably an "
                             "interrupted download or copy. Copy it again.") from None
        raise ImageError("unreadable", f"{name}: could not be decoded ({exc}). Re-save it as JPEG "
                         "or PNG.") from None
    try:
        ImageOps.exif_transpose(img, in_place=True)  # (not in place, it copies even upright images)
    except Exception:  # a broken EXIF block must not cost the picture
        pass
    return _to_rgb(img)


def image_size(source: Path | str) -> tuple[int, int]:
    """(width, height) without decoding the pixels."""
    with Image.open(source) as img:
        return img.size
