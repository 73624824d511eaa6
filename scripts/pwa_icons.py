"""Draw the installable portal's icons (issue #16-2) into src/carnet/web/static/icons/: a French-blue square with a
white « C » (a thick arc, no font needed). Run again after changing the drawing:
`.venv/bin/python scripts/pwa_icons.py`; the PNG files are committed."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

BLUE = (0, 0, 145, 255)  # #000091, the theme colour of the manifest
WHITE = (255, 255, 255, 255)
OUT = Path(__file__).resolve().parents[1] / "src" / "carnet" / "web" / "static" / "icons"
SCALE = 4  # drawn larger, then reduced: smooth edges


def icon(size: int, *, safe_zone: float) -> Image.Image:
    """The square at `size` px; the « C » fits in the central `safe_zone` part (maskable icons: 80 %)."""
    big = size * SCALE
    image = Image.new("RGBA", (big, big), BLUE)
    draw = ImageDraw.Draw(image)
    radius = big * safe_zone * 0.36
    centre = big / 2
    box = (centre - radius, centre - radius, centre + radius, centre + radius)
    draw.arc(box, start=45, end=315, fill=WHITE, width=round(radius * 0.42))
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, size, safe_zone in (
        ("icon-192.png", 192, 1.0),
        ("icon-512.png", 512, 1.0),
        ("icon-maskable-512.png", 512, 0.8),
        ("apple-touch-icon.png", 180, 0.9),
    ):
        icon(size, safe_zone=safe_zone).convert("RGB").save(OUT / name, optimize=True)


if __name__ == "__main__":
    main()
