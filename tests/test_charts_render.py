"""The PNG renderer: any chart description becomes a PNG that decodes, at the size it says."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from bot.charts.render import PNG_SIGNATURE, render
from bot.charts.spec import BarChart, Marker, Series, Style, Threshold, TimeChart

START = datetime(2023, 11, 12, 8, 0, tzinfo=UTC)


def a_leak(samples: int = 240) -> TimeChart:
    in_use = tuple((START + timedelta(seconds=30 * i), None if i == 40 else float(min(20 + i, 97))) for i in range(samples))
    return TimeChart(
        title="Connections on primary", caption="Connections in use against the limit.", zone="Europe/Paris",
        start=START, end=START + timedelta(seconds=30 * samples), y_label="connections",
        series=(Series("in use", in_use, Style.STEP),),
        markers=(Marker(START + timedelta(minutes=15), "detection", "Alert fired"),
                 Marker(START + timedelta(minutes=90), "resolved", "Resolved")),
        thresholds=(Threshold(97, "limit"),),
    )


def decoded(data: bytes) -> Image.Image:
    assert data.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(data))
    image.load()  # decodes every pixel: a truncated file raises here
    return image


@pytest.mark.parametrize(("width", "height"), [(1200, 600), (800, 400)])
def test_a_time_chart_is_a_png_of_the_stated_size(width: int, height: int) -> None:
    png = render(a_leak(), width=width, height=height)
    image = decoded(png.data)
    assert (image.format, image.size) == ("PNG", (width, height)) == ("PNG", (png.width, png.height))


def test_a_bar_chart_is_a_png_and_its_stacks_must_match_its_categories() -> None:
    chart = BarChart("Incidents per week", "Declared incidents per ISO week, by severity.", ("2026-W40", "2026-W41"),
                     (("SEV1", (1.0, 0.0)), ("SEV2", (2.0, 3.0))), "incidents")
    assert decoded(render(chart).data).size == (1200, 600)
    with pytest.raises(ValueError):
        render(BarChart("x", "x", ("a", "b"), (("SEV1", (1.0,)),), "incidents"))


def test_a_chart_with_nothing_to_draw_is_refused() -> None:
    empty = TimeChart("t", "c", "UTC", START, START + timedelta(hours=1), "connections", series=())
    with pytest.raises(ValueError, match="no series"):
        render(empty)
