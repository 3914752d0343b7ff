"""Geometry of the small server-drawn SVG charts; the templates (``_charts.html``) draw them.

Colours come from CSS classes in the stylesheet, never from inline styles, so the pages keep working under a
Content-Security-Policy without ``'unsafe-inline'``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.systems.models import sl_gap


@dataclass(frozen=True)
class Segment:
    """One coloured piece of a bar (a whole bar when the chart is not stacked)."""

    x: float
    width: float
    value: int
    label: str
    css: str


@dataclass(frozen=True)
class BarRow:
    """One row of a horizontal bar chart: its label, its segments and where it links to."""

    label: str
    total: int
    y: float
    segments: list[Segment]
    href: str | None = None
    value_x: float = 0.0


@dataclass(frozen=True)
class BarChart:
    """A horizontal (optionally stacked) bar chart with its viewBox size and legend."""

    title: str
    width: int
    height: int
    label_width: int
    bar_height: int
    rows: list[BarRow]
    legend: list[tuple[str, str]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not any(r.total for r in self.rows)


@dataclass(frozen=True)
class Item:
    """Input of a bar chart: a label, values per series (``{css_class: value}``) and an optional link."""

    label: str
    values: dict[str, int]
    href: str | None = None


def bar_chart(
    title: str,
    items: list[Item],
    *,
    legend: list[tuple[str, str]] | None = None,
    width: int = 420,
    label_width: int = 130,
    bar_height: int = 22,
    gap: int = 10,
) -> BarChart:
    """Lay out horizontal bars scaled to the largest total; segments stack in the order of ``values``."""
    value_room = 48
    plot = width - label_width - value_room
    largest = max((sum(i.values.values()) for i in items), default=0) or 1
    rows: list[BarRow] = []
    for n, item in enumerate(items):
        x = float(label_width)
        segments = []
        for css, value in item.values.items():
            if value <= 0:
                continue
            w = max(2.0, plot * value / largest)
            segments.append(Segment(x=round(x, 1), width=round(w, 1), value=value, label=item.label, css=css))
            x += w
        rows.append(
            BarRow(
                label=item.label,
                total=sum(item.values.values()),
                y=n * (bar_height + gap),
                segments=segments,
                href=item.href,
                value_x=round(x + 6, 1),
            )
        )
    height = max(1, len(items)) * (bar_height + gap) - gap
    return BarChart(
        title=title,
        width=width,
        height=height,
        label_width=label_width,
        bar_height=bar_height,
        rows=rows,
        legend=legend or [],
    )


@dataclass(frozen=True)
class LevelBar:
    x: float
    y: float
    width: float
    height: float
    level: int


@dataclass(frozen=True)
class FRGroup:
    """One IEC 62443 foundational requirement: its target and achieved security levels drawn side by side."""

    fr: str
    name: str
    target: int
    achieved: int | None  # None: not assessed (drawn as no bar, never as SL 0)
    gap: bool
    label_x: float
    target_bar: LevelBar
    achieved_bar: LevelBar


@dataclass(frozen=True)
class SLChart:
    width: int
    height: int
    top: int
    plot_height: int
    left: int
    gridlines: list[tuple[float, int]]
    groups: list[FRGroup]


def sl_chart(
    target: dict[str, int],
    achieved: dict[str, int | None] | None,
    names: dict[str, str],
    *,
    max_level: int = 4,
) -> SLChart:
    """FR1-FR7 target (SL-T) against achieved (SL-A) security levels; gaps as ``sl_gap`` finds them, and an
    unassessed FR (``None``) shown as such, not as SL 0."""
    achieved = achieved or {}
    gaps = set(sl_gap(target, achieved))
    width, left, top, plot_height, bottom = 340, 34, 8, 130, 38
    group_width = (width - left - 8) / max(1, len(names))
    bar_w = group_width * 0.34
    groups: list[FRGroup] = []

    def bar(x: float, level: int) -> LevelBar:
        h = plot_height * level / max_level
        return LevelBar(
            x=round(x, 1),
            y=round(top + plot_height - h, 1),
            width=round(bar_w, 1),
            height=round(h, 1),
            level=level,
        )

    for i, (fr, name) in enumerate(names.items()):
        x0 = left + i * group_width
        t, a = target.get(fr, 0), achieved.get(fr)
        groups.append(
            FRGroup(
                fr=fr,
                name=name,
                target=t,
                achieved=a,
                gap=fr in gaps,
                label_x=round(x0 + group_width / 2, 1),
                target_bar=bar(x0 + group_width * 0.16, t),
                achieved_bar=bar(x0 + group_width * 0.16 + bar_w + 2, a or 0),
            )
        )
    gridlines = [
        (round(top + plot_height - plot_height * lv / max_level, 1), lv) for lv in range(max_level + 1)
    ]
    return SLChart(
        width=width,
        height=top + plot_height + bottom,
        top=top,
        plot_height=plot_height,
        left=left,
        gridlines=gridlines,
        groups=groups,
    )
