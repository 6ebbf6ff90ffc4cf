"""Server-rendered SVG bar charts with axes and labels (no JavaScript, no CDN)."""

from collections.abc import Callable
from datetime import date

from django.utils.html import format_html, format_html_join

WIDTH, HEIGHT = 760, 220
LEFT, BOTTOM, TOP, RIGHT = 110, 40, 12, 10  # room for the y labels, the x labels and the axis titles
Y_TICKS = 4


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 x 10^n at or above ``value`` (a y axis that ends on a round number)."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(*, chart_id: str, title: str, days: list[date], values: dict, y_label: str, fmt: Callable[[int], str]) -> str:
    """Bars per day, a y axis with ``Y_TICKS`` labelled gridlines, dates under the x axis, a title per bar."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_ceiling(max([values.get(day, 0) for day in days] + [0]))
    slot = plot_w / len(days)
    parts = []
    for tick in range(Y_TICKS + 1):
        amount = top * tick // Y_TICKS
        y = round(TOP + plot_h - plot_h * tick / Y_TICKS, 1)
        parts.append(format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" class="grid"/><text x="{}" y="{}" class="ylabel">{}</text>',
            LEFT, y, LEFT + plot_w, y, LEFT - 6, y + 4, fmt(amount),
        ))
    label_every = max(1, len(days) // 8)
    for index, day in enumerate(days):
        value = values.get(day, 0)
        bar_h = round(plot_h * value / top, 1)
        x = round(LEFT + index * slot + slot * 0.1, 1)
        parts.append(format_html(
            '<rect x="{}" y="{}" width="{}" height="{}" class="bar"><title>{}: {}</title></rect>',
            x, round(TOP + plot_h - bar_h, 1), round(slot * 0.8, 1), bar_h, day.isoformat(), fmt(value),
        ))
        if index % label_every == 0 or index == len(days) - 1:
            parts.append(format_html(
                '<text x="{}" y="{}" class="xlabel">{}</text>',
                round(LEFT + index * slot + slot / 2, 1), TOP + plot_h + 16, day.strftime("%m-%d"),
            ))
    parts.append(format_html(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="axis"/><line x1="{}" y1="{}" x2="{}" y2="{}" class="axis"/>',
        LEFT, TOP, LEFT, TOP + plot_h, LEFT, TOP + plot_h, LEFT + plot_w, TOP + plot_h,
    ))
    parts.append(format_html(
        '<text x="{}" y="{}" class="axistitle">day (UTC)</text>'
        '<text x="12" y="{}" class="axistitle" transform="rotate(-90 12 {})">{}</text>',
        LEFT + plot_w / 2, HEIGHT - 4, TOP + plot_h / 2, TOP + plot_h / 2, y_label,
    ))
    return format_html(
        '<svg class="ledgerx-chart" id="{}" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}">'
        "<title>{}</title>{}</svg>",
        chart_id, title, WIDTH, HEIGHT, WIDTH, HEIGHT, title, format_html_join("", "{}", ((part,) for part in parts)),
    )
