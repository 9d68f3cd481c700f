"""A progress-over-time chart as inline SVG, drawn on the server (no JS, no CDN)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 480, 220, 52, 14, 22, 30


def _panel(points: list[tuple[str, int]], title: str, colour: str) -> str:
    """One cumulative line with its area, the final value and a few week labels."""
    n = len(points)
    top = max((v for _, v in points), default=0) or 1
    inner_w, inner_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def xy(i: int, v: int) -> tuple[float, float]:
        x = PAD_L + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)
        return round(x, 1), round(PAD_T + inner_h * (1 - v / top), 1)

    coords = [xy(i, v) for i, (_, v) in enumerate(points)]
    line = " ".join(f"{x},{y}" for x, y in coords)
    base = PAD_T + inner_h
    area = f"{coords[0][0]},{base} {line} {coords[-1][0]},{base}" if coords else ""
    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="chart" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{PAD_L}" y="15" font-size="15" fill="#334">{escape(title)}</text>',
    ]
    for frac in (0, 0.5, 1):
        y = round(PAD_T + inner_h * (1 - frac), 1)
        parts.append(
            f'<line x1="{PAD_L}" x2="{WIDTH - PAD_R}" y1="{y}" y2="{y}" stroke="#e4e7eb"/>'
        )
        parts.append(
            f'<text x="{PAD_L - 6}" y="{y + 4}" font-size="14" text-anchor="end" '
            f'fill="#556">{round(top * frac):,}</text>'
        )
    if coords:
        parts.append(f'<polygon points="{area}" fill="{colour}" fill-opacity="0.12"/>')
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="{colour}" '
            f'stroke-width="2.5" stroke-linejoin="round"/>'
        )
        for (x, y), (week, v) in zip(coords, points, strict=True):
            parts.append(
                f'<circle cx="{x}" cy="{y}" r="3" fill="{colour}">'
                f"<title>{escape(week)}: {v:,}</title></circle>"
            )
        step = max(1, (n + 5) // 6)
        for i in range(0, n, step):
            parts.append(
                f'<text x="{coords[i][0]}" y="{HEIGHT - 14}" font-size="14" '
                f'text-anchor="middle" fill="#556">{escape(points[i][0][5:])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def progress_svg(series: list[dict[str, Any]], visits_title: str, workers_title: str) -> Markup:
    """Two panels, cumulative visits and cumulative workers met, one point per week."""
    visits = [(s["week"], s["cum_visits"]) for s in series]
    workers = [(s["week"], s["cum_workers"]) for s in series]
    return Markup(
        _panel(visits, visits_title, "#b71c1c") + _panel(workers, workers_title, "#1565c0")
    )
