"""A check's measurements over a window as a small SVG, drawn on the server. Pure.

No chart library: the admin needs a line, its points coloured by result, the limit as a
dashed line, and gaps where nothing could be measured, which is a few dozen lines of SVG.
"""

from collections.abc import Sequence
from html import escape

from monitoring.analysis import number

COLOURS = {"success": "#15803d", "failure": "#b91c1c", "unmeasured": "#9ca3af"}


def chart(
    points: Sequence[tuple[float | None, str]],
    limit: float | None,
    *,
    label: str = "",
    width: int = 360,
    height: int = 90,
) -> str:
    """`points`: (value or None, result) in time order; `limit`: the line they are held to."""
    pad = 6
    values = [v for v, _ in points if v is not None]
    scale = values + ([limit] if limit is not None else [])
    low, high = (min(scale), max(scale)) if scale else (0.0, 1.0)
    if high == low:
        low, high = low - 1, high + 1
    low, high = low - (high - low) * 0.1, high + (high - low) * 0.1

    def y(value: float) -> float:
        return round(pad + (height - 2 * pad) * (high - value) / (high - low), 1)

    def x(i: int) -> float:
        span = max(1, len(points) - 1)
        return round(pad + (width - 2 * pad) * i / span, 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}">',
        f'<rect width="{width}" height="{height}" fill="#f9fafb" stroke="#e5e7eb"/>',
    ]
    if limit is not None:
        parts.append(
            f'<line x1="0" x2="{width}" y1="{y(limit)}" y2="{y(limit)}" stroke="#b91c1c" '
            f'stroke-dasharray="4 3"><title>limit {number(limit)}</title></line>'
        )
    run: list[str] = []  # a polyline per stretch of measured values; a gap breaks it
    for i, (value, _) in enumerate([*points, (None, "")]):
        if value is not None:
            run.append(f"{x(i)},{y(value)}")
        elif run:
            parts.append(
                f'<polyline points="{" ".join(run)}" fill="none" stroke="#374151"'
                ' stroke-width="1.5"/>'
            )
            run = []
    for i, (value, result) in enumerate(points):
        colour = COLOURS.get(result, "#374151")
        if value is None:
            parts.append(
                f'<rect x="{x(i) - 2}" y="{height - pad - 2}" width="4" height="4" '
                f'fill="{colour}"><title>{escape(result)}</title></rect>'
            )
        else:
            parts.append(
                f'<circle cx="{x(i)}" cy="{y(value)}" r="3" fill="{colour}">'
                f"<title>{number(value)} ({escape(result)})</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)
