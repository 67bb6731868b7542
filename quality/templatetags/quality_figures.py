"""One figure on the Quality page: its value, its 95 % interval and its n, or why it is undefined.
Never NaN: a figure without a value shows a dash and its reason."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.html import format_html

register = template.Library()

FORMATS = ("number", "rate", "signed", "score")


def as_text(value: float, kind: str) -> str:
    if kind == "rate":
        return f"{value * 100:.1f} %"
    if kind == "signed":
        return f"{value:+.2f}"
    return f"{value:.2f}"


@register.simple_tag
def fig(figure: dict[str, Any] | None, kind: str = "number", name: str = "") -> str:
    """``figure`` is a Fig dict (value, n, ci, undefined); ``kind`` says how to write the value
    (``rate`` as a percentage, ``signed`` with its sign); ``name`` goes in ``data-fig`` so that a
    test or a reader can find the figure."""
    if kind not in FORMATS:
        raise template.TemplateSyntaxError(f"fig: kind must be one of {', '.join(FORMATS)}")
    if not figure:
        return format_html('<span class="fig undefined" data-fig="{}">—</span>', name)
    n = figure.get("n", 0)
    value = figure.get("value")
    if value is None or value != value:  # NaN never reaches the page
        why = figure.get("undefined") or "no value"
        return format_html(
            '<span class="fig undefined" data-fig="{}" data-n="{}">— <span class="why">{}</span>'
            ' <span class="n">n={}</span></span>',
            name,
            n,
            why,
            n,
        )
    ci = figure.get("ci")
    interval = (
        format_html(' <span class="ci">[{}, {}]</span>', as_text(ci[0], kind), as_text(ci[1], kind)) if ci else ""
    )
    return format_html(
        '<span class="fig" data-fig="{}" data-value="{}" data-n="{}">{}{} <span class="n">n={}</span></span>',
        name,
        repr(float(value)),
        n,
        as_text(value, kind),
        interval,
        n,
    )
