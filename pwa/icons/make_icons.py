"""Draw the app icons as PNG files with the standard library only (no downloads, no Pillow).

Two people face to face on the federation's red: run `python3 make_icons.py` in this folder.
"""

import struct
import zlib

RED = (183, 28, 28)
WHITE = (255, 255, 255)


def shape(x: float, y: float) -> bool:
    """True where the white figure is, in unit coordinates (0..1)."""
    for cx in (0.36, 0.64):
        if (x - cx) ** 2 + (y - 0.36) ** 2 < 0.085**2:
            return True
        # shoulders: upper half of an ellipse
        if y >= 0.5 and y < 0.68 and ((x - cx) / 0.14) ** 2 + ((y - 0.68) / 0.19) ** 2 < 1:
            return True
    return 0.72 < y < 0.76 and 0.22 < x < 0.78  # the table between them


def pixel(size: int, px: int, py: int, inset: float, rounded: bool) -> tuple[int, int, int, int]:
    samples = 3
    white = red = 0
    for sy in range(samples):
        for sx in range(samples):
            u = (px + (sx + 0.5) / samples) / size
            v = (py + (sy + 0.5) / samples) / size
            if rounded:
                r = 0.18
                dx = max(r - u, 0, u - (1 - r))
                dy = max(r - v, 0, v - (1 - r))
                if dx * dx + dy * dy > r * r:
                    continue
            x = (u - inset) / (1 - 2 * inset)
            y = (v - inset) / (1 - 2 * inset)
            if shape(x, y):
                white += 1
            else:
                red += 1
    n = samples * samples
    cov = white + red
    if cov == 0:
        return (0, 0, 0, 0)
    rgb = tuple(round((WHITE[i] * white + RED[i] * red) / cov) for i in range(3))
    return (*rgb, round(255 * cov / n))


def png(path: str, size: int, inset: float = 0.0, rounded: bool = True) -> None:
    rows = bytearray()
    for py in range(size):
        rows.append(0)
        for px in range(size):
            rows.extend(pixel(size, px, py, inset, rounded))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
            + chunk(b"IEND", b"")
        )


if __name__ == "__main__":
    png("icon-32.png", 32)
    png("icon-192.png", 192)
    png("icon-512.png", 512)
    png("maskable-512.png", 512, inset=0.12, rounded=False)  # safe zone for Android masks
    png("apple-touch-icon.png", 180, rounded=False)  # iOS rounds the corners itself
