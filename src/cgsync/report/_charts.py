"""The page's plotly charts, as HTML fragments that expect plotly.js inlined once in the page."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from cgsync.report._models import Driver, Funnel, Granularity, MonthRate, PeriodScore

INK = "#1f2933"
MUTED = "#7b8794"
GRID = "#e4e7eb"
ACCENT = "#2563eb"
PROMOTER = "#16a34a"
DETRACTOR = "#dc2626"

_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d"],
}


def over_time_chart(points: tuple[PeriodScore, ...], granularity: Granularity) -> str:
    """NPS as a line over the response count as bars, one point per week or month."""
    starts = [point.start.isoformat() for point in points]
    figure = go.Figure(
        [
            go.Bar(
                x=starts,
                y=[point.score.responses for point in points],
                name="Responses",
                marker_color="#c7d2fe",
                hovertemplate="%{y:,} responses<extra></extra>",
            ),
            # The overlaying axis draws on top, so the NPS line goes there.
            go.Scatter(
                x=starts,
                y=[point.score.nps for point in points],
                name="NPS",
                yaxis="y2",
                mode="lines+markers",
                line={"color": ACCENT, "width": 3},
                marker={"size": 8},
                hovertemplate="NPS %{y:.0f}<extra></extra>",
            ),
        ]
    )
    figure.update_layout(
        **_layout(height=340),
        hovermode="x unified",
        bargap=0.35,
        legend={"orientation": "h", "x": 0, "y": 1.14},
        xaxis={
            "type": "date",
            "tick0": starts[0] if starts else None,
            "dtick": 7 * 24 * 3600 * 1000 if granularity == "week" else "M1",
            "tickformat": "%d %b" if granularity == "week" else "%b %Y",
            "showgrid": False,
        },
        yaxis={
            "title": "Responses",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
            "tickformat": ",d",
        },
        yaxis2={
            "title": "NPS",
            "overlaying": "y",
            "side": "left",
            "range": [-105, 105],
            "tickvals": [-100, -50, 0, 50, 100],
            "zeroline": True,
            "zerolinecolor": MUTED,
            "gridcolor": GRID,
        },
    )
    return _fragment(figure, "chart-over-time")


def funnel_chart(funnel: Funnel) -> str:
    """Sent, opened, clicked, responded and failed, each with its share of sent."""
    stages = [
        ("Sent", funnel.sent, "#1e3a8a"),
        ("Opened", funnel.opened, "#1d4ed8"),
        ("Clicked", funnel.clicked, "#3b82f6"),
        ("Responded", funnel.responded, PROMOTER),
        ("Failed", funnel.failed, DETRACTOR),
    ]
    labels = [
        f"{count:,} · {100 * count / funnel.sent:.1f}%" if funnel.sent else f"{count:,}"
        for _, count, _ in stages
    ]
    figure = go.Figure(
        go.Bar(
            x=[count for _, count, _ in stages],
            y=[name for name, _, _ in stages],
            orientation="h",
            marker_color=[color for _, _, color in stages],
            text=labels,
            textposition="auto",
            hovertemplate="%{y}: %{x:,}<extra></extra>",
        )
    )
    figure.update_layout(
        **_layout(height=300),
        showlegend=False,
        yaxis={"autorange": "reversed"},
        xaxis={"gridcolor": GRID, "rangemode": "tozero"},
    )
    return _fragment(figure, "chart-funnel")


def drivers_chart(drivers: tuple[Driver, ...]) -> str:
    """Drivers ranked by how far the NPS of the responses naming them is from the others'."""
    ranked = [driver for driver in drivers if driver.nps_difference is not None]
    figure = go.Figure(
        go.Bar(
            x=[driver.nps_difference for driver in ranked],
            y=[driver.name for driver in ranked],
            orientation="h",
            marker_color=[
                PROMOTER if (driver.nps_difference or 0) >= 0 else DETRACTOR for driver in ranked
            ],
            customdata=[[driver.mentions, driver.score.nps] for driver in ranked],
            hovertemplate=(
                "%{y}: %{x:+.0f} NPS points<br>%{customdata[0]:,} mentions, "
                "NPS %{customdata[1]:.0f}<extra></extra>"
            ),
        )
    )
    figure.update_layout(
        **_layout(height=max(200, 60 + 34 * len(ranked))),
        showlegend=False,
        yaxis={"autorange": "reversed", "automargin": True},
        xaxis={
            "title": "NPS of responses naming it − NPS of the others",
            "zeroline": True,
            "zerolinecolor": MUTED,
            "gridcolor": GRID,
        },
    )
    return _fragment(figure, "chart-drivers")


def response_rate_chart(months: tuple[MonthRate, ...]) -> str:
    """Invitations and their answers per month of sending, with the response rate as a line."""
    starts = [month.start.isoformat() for month in months]
    hours = [
        "—" if month.median_hours_to_answer is None else f"{month.median_hours_to_answer:.1f} h"
        for month in months
    ]
    figure = go.Figure(
        [
            go.Bar(
                x=starts,
                y=[month.invitations for month in months],
                name="Invitations",
                marker_color="#c7d2fe",
                hovertemplate="%{y:,} invitations<extra></extra>",
            ),
            go.Bar(
                x=starts,
                y=[month.responses for month in months],
                name="Answered",
                marker_color=PROMOTER,
                customdata=hours,
                hovertemplate="%{y:,} answered, median %{customdata} to answer<extra></extra>",
            ),
            go.Scatter(
                x=starts,
                y=[
                    None if month.response_rate is None else 100 * month.response_rate
                    for month in months
                ],
                name="Response rate",
                yaxis="y2",
                mode="lines+markers",
                line={"color": ACCENT, "width": 3},
                hovertemplate="%{y:.1f}% answered<extra></extra>",
            ),
        ]
    )
    figure.update_layout(
        **_layout(height=340),
        hovermode="x unified",
        barmode="overlay",
        bargap=0.2,
        legend={"orientation": "h", "x": 0, "y": 1.14},
        xaxis={"type": "date", "dtick": "M1", "tickformat": "%b %Y", "showgrid": False},
        yaxis={"title": "Invitations", "side": "right", "rangemode": "tozero", "showgrid": False},
        yaxis2={
            "title": "Response rate %",
            "overlaying": "y",
            "side": "left",
            "range": [0, 100],
            "gridcolor": GRID,
        },
    )
    return _fragment(figure, "chart-response-rate")


def _layout(*, height: int) -> dict[str, Any]:
    return {
        "height": height,
        "margin": {"l": 60, "r": 60, "t": 30, "b": 40},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "font": {
            "family": "Inter, Segoe UI, Helvetica, Arial, sans-serif",
            "color": INK,
            "size": 13,
        },
    }


def _fragment(figure: go.Figure, div_id: str) -> str:
    return str(
        figure.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=_CONFIG)
    )
