"""The PNG renderer: any chart description becomes a PNG that decodes, at the size it says."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from matplotlib import dates as mdates
from PIL import Image

from bot.charts.render import PNG_SIGNATURE, LabelBox, figure, place_labels, render, x_range
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


# --- Marker labels: never on top of each other, never outside the plot.


def assert_apart_and_inside(boxes: list[LabelBox], width: float, height: float) -> None:
    for i, box in enumerate(boxes):
        assert box.left >= 0 and box.left + box.width <= width and box.top >= 0 and box.top + box.height <= height, box
        assert not any(box.overlaps(other) for other in boxes[i + 1:]), (box, boxes)


def test_labels_of_close_markers_are_staggered_and_those_at_the_edge_turn_inward() -> None:
    # A 1½-minute incident in an 11-minute chart 970 px wide: lines 10 to 30 px apart, labels 11 px thick.
    xs = [893.0, 921.0, 932.0, 940.0, 955.0]  # Declared, Paged, Acknowledged, Monitoring, Resolved
    sizes = [(11.0, 45.0), (11.0, 105.0), (11.0, 145.0), (11.0, 60.0), (11.0, 50.0)]
    boxes = place_labels(xs, sizes, 970.0, 480.0)
    assert_apart_and_inside(boxes, 970.0, 480.0)
    assert boxes[0] == LabelBox("right", 897.0, 4.0, 11.0, 45.0)  # a label with room: right of its line, at the top
    # Two moments 3 px apart at the right edge, beside the legend: both turn left, one below the other.
    edge = place_labels([966.0, 969.0], [(11.0, 45.0), (11.0, 100.0)], 970.0, 480.0)
    assert_apart_and_inside(edge, 970.0, 480.0)
    assert [b.side for b in edge] == ["left", "left"] and edge[1].top == edge[0].top + edge[0].height + 4.0


def incident_of_90_seconds() -> TimeChart:
    declared = START + timedelta(minutes=10)
    return TimeChart(
        title="Incident 2: connections on primary", caption="c", zone="Europe/Paris", start=START,
        end=START + timedelta(minutes=11), y_label="connections",
        series=(Series("in use", tuple((START + timedelta(seconds=2 * i), float(i % 30)) for i in range(330)), Style.STEP),),
        markers=(Marker(declared, "declared", "Declared"),
                 Marker(declared + timedelta(seconds=19), "paged", "Paged Database team"),
                 Marker(declared + timedelta(seconds=26), "acknowledged", "Database team acknowledged"),
                 Marker(declared + timedelta(seconds=32), "status", "Monitoring"),
                 Marker(declared + timedelta(seconds=42), "resolved", "Resolved"),
                 Marker(START + timedelta(minutes=11), "diagnostic", "diag connections")),  # at the very edge
        thresholds=(Threshold(97, "limit"),),
    )


def test_the_drawn_labels_of_a_short_incident_neither_overlap_nor_leave_the_plot() -> None:
    drawn = figure(incident_of_90_seconds())
    drawn.canvas.draw()
    renderer = drawn.canvas.get_renderer()  # type: ignore[attr-defined]
    [axes] = drawn.axes
    plot = axes.get_window_extent(renderer)
    labels = [t for t in axes.texts if t.get_text() != ""]
    assert [t.get_text() for t in labels] == ["Declared", "Paged Database team", "Database team acknowledged",
                                              "Monitoring", "Resolved", "diag connections"]
    extents = [t.get_window_extent(renderer) for t in labels]
    for i, extent in enumerate(extents):
        assert plot.x0 <= extent.x0 and extent.x1 <= plot.x1 and plot.y0 <= extent.y0 and extent.y1 <= plot.y1, labels[i]
        for j in range(i + 1, len(extents)):
            assert not extent.overlaps(extents[j]), (labels[i].get_text(), labels[j].get_text())


# --- Dots at either end of a time chart are drawn whole.


def test_dots_at_the_ends_of_a_time_chart_get_room_and_lines_do_not() -> None:
    since, until = START, START + timedelta(days=90)
    # The report: incidents declared at the period's first moment and minutes before it was run.
    dots = Series("SEV1 incident", ((since, 4.0), (until - timedelta(minutes=5), 12.0), (until, None)), Style.POINTS)
    report_chart = TimeChart("Time to resolve", "c", "Europe/Paris", since, until, "minutes", series=(dots,))
    start, end = x_range(report_chart)
    pad = timedelta(days=90) * 0.01
    assert (start, end) == (since - pad, until - timedelta(minutes=5) + pad)  # the gap (None) is no dot
    [axes] = figure(report_chart).axes
    left, right = axes.get_xlim()
    assert right > mdates.date2num(until) and left < mdates.date2num(since)
    # Only dots need it: a step line up to the edge keeps the chart's own span (its caption names it).
    assert x_range(a_leak()) == (a_leak().start, a_leak().end)
