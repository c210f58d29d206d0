"""Photos as intake stores them: decoded (so a file that only starts like an image is
refused), turned upright, and written again without metadata.

A phone's JPEG carries EXIF, often with the GPS position of the person who took it (the
reporter's home, say), the device and the time; none of it is needed to show a pothole.
Re-encoding keeps the pixels and the colour profile and drops everything else. JPEGs
keep their quantisation tables (``quality="keep"``), so the photo does not lose quality
at each store.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

#: Pillow's format name for each type intake accepts.
FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
#: Pixels a photo may have (a 5 MB file can announce a billion: a decompression bomb).
MAX_PIXELS = 50_000_000


class NotAnImage(ValueError):
    pass


def clean(data: bytes, content_type: str) -> bytes:
    """``data`` decoded and re-encoded as ``content_type`` without EXIF, XMP or comments;
    NotAnImage when it does not decode as that type."""
    fmt = FORMATS.get(content_type)
    if fmt is None:
        raise NotAnImage(f"unsupported type {content_type}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=[fmt])
            if img.width * img.height > MAX_PIXELS:
                raise NotAnImage(f"more than {MAX_PIXELS} pixels")
            img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise NotAnImage(str(exc)[:200]) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise NotAnImage(str(exc)[:200]) from None
    icc = img.info.get("icc_profile")
    keep_tables = fmt == "JPEG" and img.mode in ("L", "RGB", "CMYK")
    upright = ImageOps.exif_transpose(img)  # the EXIF orientation, applied to the pixels
    rotated = upright is not img
    out = io.BytesIO()
    options: dict[str, object] = {"exif": b""}
    if icc:
        options["icc_profile"] = icc
    if fmt == "JPEG":
        options["quality"] = "keep" if keep_tables and not rotated else 90
    if fmt == "WEBP":
        options["lossless"] = bool(img.info.get("lossless"))
        options["quality"] = 90
    upright.save(out, format=fmt, **options)
    return out.getvalue()
