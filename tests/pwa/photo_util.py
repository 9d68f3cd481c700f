"""A phone camera's photo for the photo tests and bench/photo_bench.py: 12 megapixels,
JPEG, with the EXIF a phone writes (make, model, body serial, GPS, capture time)."""

from __future__ import annotations

import random
from pathlib import Path

GPS = (30.0, 39.0, 36.0), (104.0, 3.0, 36.0)  # 30°39'36"N 104°3'36"E, Chengdu


def phone_jpeg(path: Path, width: int = 4000, height: int = 3000, seed: int = 7) -> Path:
    """Write a photo-like JPEG (sky, buildings, texture: it compresses like a photo,
    not like noise or a flat colour) with camera EXIF incl. GPS to `path`."""
    from PIL import Image, ImageDraw, ImageFilter

    rnd = random.Random(seed)
    small = Image.new("RGB", (width // 4, height // 4))
    d = ImageDraw.Draw(small)
    w, h = small.size
    for y in range(h):  # sky to ground
        k = y / h
        d.line([(0, y), (w, y)], fill=(int(90 + 120 * k), int(140 + 60 * k), int(220 - 120 * k)))
    for _ in range(60):  # buildings, windows
        x0, bw = rnd.randrange(w), rnd.randrange(40, 200)
        top = rnd.randrange(h // 5, h // 2)
        c = tuple(rnd.randrange(60, 200) for _ in range(3))
        d.rectangle([x0, top, x0 + bw, h], fill=c)
        for wy in range(top + 8, h - 10, 18):
            for wx in range(x0 + 6, x0 + bw - 6, 14):
                if rnd.random() < 0.6:
                    d.rectangle([wx, wy, wx + 7, wy + 9], fill=(230, 220, 160))
    small = small.filter(ImageFilter.GaussianBlur(0.8))
    img = small.resize((width, height), Image.Resampling.BICUBIC)
    # Sensor grain: what makes camera JPEGs megabytes.
    grain = Image.effect_noise((width, height), 18).convert("RGB")
    img = Image.blend(img, grain, 0.12)
    exif = Image.Exif()
    exif[0x010F] = "ACME"  # Make
    exif[0x0110] = "Phone 9 Pro"  # Model
    exif[0x0132] = "2026:03:05 10:20:00"  # DateTime
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = "2026:03:05 10:20:00"  # DateTimeOriginal
    ifd[0xA431] = "SERIAL-0042-7781"  # BodySerialNumber
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2], gps[3], gps[4] = "N", GPS[0], "E", GPS[1]
    img.save(path, "JPEG", quality=92, exif=exif)
    return path


def exif_of(data: bytes) -> dict:
    """The EXIF tags of a JPEG (empty when there are none), GPS and Exif IFDs included."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(data))
    exif = img.getexif()
    out = dict(exif)
    for ifd in (0x8769, 0x8825):
        sub = exif.get_ifd(ifd)
        if sub:
            out[ifd] = dict(sub)
    return out
