"""Draws the Floorwatch app icon (a plant floor of machine tiles, one in warning and
one in alarm) as RGBA PNG files at the sizes Tauri bundles. Standard library only:
    python3 assets/icons/draw.py
"""
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).parent
SS = 4  # supersampling per axis, for smooth edges


def rounded(x, y, x0, y0, x1, y1, r):
    """Whether (x, y) lies inside the rounded rectangle."""
    if x < x0 or x > x1 or y < y0 or y > y1:
        return False
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def mix(a, b, t):
    return tuple(round(a[i] + (b[i] - a[i]) * t) for i in range(3))


OK = (63, 163, 107)
WARN = (224, 160, 48)
ALARM = (224, 85, 69)
TOP = (38, 52, 66)
BOTTOM = (22, 31, 40)


def colour_at(u, v):
    """The icon in unit coordinates: returns (r, g, b, a) or None for transparent."""
    if not rounded(u, v, 0.03, 0.03, 0.97, 0.97, 0.2):
        return None
    bg = mix(TOP, BOTTOM, v)
    cols, rows = 4, 3
    gx0, gy0, gx1, gy1 = 0.17, 0.24, 0.83, 0.76
    gap = 0.035
    tw = (gx1 - gx0 - gap * (cols - 1)) / cols
    th = (gy1 - gy0 - gap * (rows - 1)) / rows
    for r in range(rows):
        for c in range(cols):
            x0 = gx0 + c * (tw + gap)
            y0 = gy0 + r * (th + gap)
            if rounded(u, v, x0, y0, x0 + tw, y0 + th, 0.03):
                colour = OK
                if (r, c) == (0, 2):
                    colour = WARN
                if (r, c) == (1, 1):
                    colour = ALARM
                return colour + (255,)
    # A thin status bar along the bottom, like the app's KPI strip.
    if rounded(u, v, 0.17, 0.81, 0.62, 0.845, 0.015):
        return (120, 190, 240, 255)
    return bg + (255,)


def render(size):
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            acc = [0, 0, 0, 0]
            for sy in range(SS):
                for sx in range(SS):
                    c = colour_at((x + (sx + 0.5) / SS) / size, (y + (sy + 0.5) / SS) / size)
                    if c:
                        a = c[3]
                        acc[0] += c[0] * a
                        acc[1] += c[1] * a
                        acc[2] += c[2] * a
                        acc[3] += a
            n = SS * SS
            a = acc[3] / n
            if a > 0:
                row += bytes([round(acc[0] / acc[3]), round(acc[1] / acc[3]), round(acc[2] / acc[3]), round(a)])
            else:
                row += bytes(4)
        rows.append(bytes(row))
    return png(size, size, b"".join(rows))


def png(w, h, raw):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        (HERE / name).write_bytes(render(size))
        print("wrote", name)
