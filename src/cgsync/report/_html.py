"""The report page: one self-contained HTML file, styles and plotly.js inlined (works offline)."""

from __future__ import annotations

from datetime import date, datetime
from html import escape
from string import Template

from plotly.offline import get_plotlyjs

from cgsync import __version__
from cgsync.report import settings
from cgsync.report._charts import (
    drivers_chart,
    funnel_chart,
    over_time_chart,
    response_rate_chart,
)
from cgsync.report._models import (
    DetractorComment,
    Driver,
    Headline,
    NpsScore,
    ReportFigures,
    Segment,
    SegmentValue,
    Topic,
    Topics,
    format_nps,
)


def render_html(figures: ReportFigures) -> str:
    """The whole page for `figures`; every value from the lake is HTML-escaped."""
    period = _period_label(figures)
    return _PAGE.substitute(
        title=escape(f"NPS report · {period}"),
        style=_STYLE,
        plotly_js=get_plotlyjs(),
        period=escape(period),
        filters=_filters_label(figures),
        source=escape(figures.source),
        generated_at=escape(figures.generated_at.strftime("%d %b %Y %H:%M UTC")),
        cards=_cards(figures.headline),
        highlights=_highlights(figures),
        drivers=_drivers(figures.drivers),
        topics=_topics(figures.topics),
        response_rate=response_rate_chart(figures.response_rate_by_month)
        if figures.response_rate_by_month
        else _empty("No invitations sent in this period."),
        granularity=figures.granularity,
        over_time=(
            over_time_chart(figures.over_time, figures.granularity)
            if figures.headline.score.responses
            else _empty("No responses in this period.")
        ),
        funnel=funnel_chart(figures.funnel)
        if figures.funnel.sent
        else _empty("No invitations sent in this period."),
        segments="".join(_segment(segment) for segment in figures.segments)
        or _empty("The lake has no segment (properties__*) columns."),
        comments=_comments(figures.detractor_comments),
        min_trusted=settings.MIN_TRUSTED_RESPONSES,
        timezone=escape(figures.timezone),
        version=__version__,
    )


def _period_label(figures: ReportFigures) -> str:
    since, until = figures.since, figures.until
    if since and until:
        return f"{_day(since)} – {_day(until)}"
    if since:
        return f"since {_day(since)}"
    if until:
        return f"until {_day(until)}"
    return "all data"


def _filters_label(figures: ReportFigures) -> str:
    if not figures.filters:
        return "none"
    return " and ".join(
        f"{escape(f.name)} = {' or '.join(escape(value) for value in f.values)}"
        for f in figures.filters
    )


def _highlights(figures: ReportFigures) -> str:
    """The lowest week or month and the worst segment value, each beside the period's NPS."""
    overall = figures.headline.score.nps
    items = []
    if (lowest := figures.lowest_period) is not None:
        unit = "week of" if figures.granularity == "week" else "month"
        when = (
            _day(lowest.start) if figures.granularity == "week" else lowest.start.strftime("%b %Y")
        )
        items.append(
            f'<li id="lowest-period"><span class="label">Lowest {unit}</span> '
            f"<strong>{escape(when)}</strong>: NPS "
            f'<span class="{_tone(lowest.score.nps)}">{format_nps(lowest.score.nps)}</span> '
            f"({lowest.score.responses:,} responses; the period: {format_nps(overall)})</li>"
        )
    if (worst := figures.worst_segment) is not None:
        segment, value = worst
        items.append(
            f'<li id="worst-segment"><span class="label">Worst segment</span> '
            f"<strong>{escape(_title(segment))} = {escape(value.value or '')}</strong>: NPS "
            f'<span class="{_tone(value.score.nps)}">{format_nps(value.score.nps)}</span> '
            f"({value.score.responses:,} responses; the period: {format_nps(overall)})</li>"
        )
    if not items:
        return ""
    return f'<section id="highlights"><ul class="highlights">{"".join(items)}</ul></section>'


def _drivers(drivers: tuple[Driver, ...]) -> str:
    if not drivers:
        return _empty("No drivers named in this period.")
    rows = "".join(_driver_row(driver) for driver in drivers)
    chart = (
        drivers_chart(drivers)
        if any(driver.nps_difference is not None for driver in drivers)
        else ""
    )
    return (
        f'{chart}<table><thead><tr><th>Driver</th><th class="num">Mentions</th>'
        '<th class="num">Positive</th><th class="num">Negative</th><th class="num">NPS</th>'
        '<th class="num">Difference</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _driver_row(driver: Driver) -> str:
    difference = driver.nps_difference
    return (
        f'<tr class="{"few" if driver.too_few else ""}"><td>{escape(driver.name)}'
        f"{_too_few() if driver.too_few else ''}</td>"
        f'<td class="num">{driver.mentions:,}</td>'
        f'<td class="num">{_percent(driver.positive_share)}</td>'
        f'<td class="num">{_percent(driver.negative_share)}</td>'
        f'<td class="num {_tone(driver.score.nps)}">{format_nps(driver.score.nps)}</td>'
        f'<td class="num {_tone(difference)}">{format_nps(difference)}</td></tr>'
    )


def _topics(topics: Topics) -> str:
    blocks = [
        _topic_block("Among detractors", "topics-detractors", topics.detractors),
        _topic_block("Among promoters", "topics-promoters", topics.promoters),
    ]
    return f'<div class="segments">{"".join(blocks)}</div>'


def _topic_block(title: str, block_id: str, topics: tuple[Topic, ...]) -> str:
    if topics:
        rows = "".join(
            f'<tr><td>{escape(t.tag)}</td><td class="num">{t.responses:,}</td>'
            f'<td class="num">{_percent(t.share)}</td></tr>'
            for t in topics
        )
    else:
        rows = '<tr><td colspan="3" class="unset">no tags in this period</td></tr>'
    return (
        f'<div class="segment" id="{block_id}"><h3>{escape(title)}</h3><table><thead><tr>'
        '<th>Tag</th><th class="num">Responses</th><th class="num">Share</th></tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _cards(headline: Headline) -> str:
    score = headline.score
    return "".join(
        [
            _card("NPS", format_nps(score.nps), _band_bar(score), css=_tone(score.nps)),
            _card(
                "Responses",
                f"{score.responses:,}",
                " · ".join(
                    _count(n, word)
                    for n, word in [
                        (score.promoters, "promoter"),
                        (score.passives, "passive"),
                        (score.detractors, "detractor"),
                    ]
                ),
            ),
            _card("Invitations", f"{headline.invitations:,}", "sent in the period"),
            _card(
                "Response rate",
                _percent(headline.response_rate),
                f"{headline.answered:,} of {headline.invitations:,} sent in the period answered",
            ),
            _card(
                "Failure rate",
                _percent(headline.failure_rate),
                f"{headline.failed:,} bounced, undeliverable or blocked",
                css="bad" if headline.failed else "",
            ),
        ]
    )


def _card(label: str, value: str, note: str, *, css: str = "") -> str:
    return (
        f'<div class="card {css}"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="note">{note}</div></div>'
    )


def _band_bar(score: NpsScore) -> str:
    if not score.responses:
        return "no responses"
    parts = [
        ("promoters", score.promoters),
        ("passives", score.passives),
        ("detractors", score.detractors),
    ]
    segments = "".join(
        f'<span class="{name}" style="width:{100 * count / score.responses:.2f}%" '
        f'title="{count:,} {name}"></span>'
        for name, count in parts
        if count
    )
    return f'<div class="bands">{segments}</div>'


def _title(segment: Segment) -> str:
    return segment.name.replace("_", " ").capitalize()


def _segment(segment: Segment) -> str:
    title = _title(segment)
    return (
        f'<div class="segment"><h3>{escape(title)} <code>{escape(segment.column)}</code></h3>'
        '<table><thead><tr><th>Value</th><th class="num">n</th><th class="num">NPS</th>'
        f"<th>-100 · 0 · +100</th></tr></thead><tbody>{_segment_rows(segment)}</tbody></table>"
        "</div>"
    )


def _segment_rows(segment: Segment) -> str:
    if not segment.values:
        return '<tr><td colspan="4" class="unset">no values in this period</td></tr>'
    shown = segment.values[: settings.SEGMENT_ROWS_SHOWN]
    hidden = segment.values[settings.SEGMENT_ROWS_SHOWN :]
    rows = "".join(_segment_row(value) for value in shown)
    if hidden:
        responses = sum(value.score.responses for value in hidden)
        rows += (
            f'<tr class="more"><td colspan="4">… {len(hidden):,} more values '
            f"({responses:,} responses); see <code>cgsync report --json</code></td></tr>"
        )
    return rows


def _segment_row(value: SegmentValue) -> str:
    nps = value.score.nps
    label = (
        escape(value.value) if value.value is not None else '<span class="unset">(not set)</span>'
    )
    return (
        f'<tr class="{"few" if value.too_few else ""}"><td>{label}'
        f"{_too_few() if value.too_few else ''}</td>"
        f'<td class="num">{value.score.responses:,}</td>'
        f'<td class="num {_tone(nps)}">{format_nps(nps)}</td><td>{_diverging_bar(nps)}</td></tr>'
    )


def _too_few() -> str:
    return (
        f' <span class="badge" title="fewer than {settings.MIN_TRUSTED_RESPONSES} responses">'
        "too few</span>"
    )


def _diverging_bar(nps: float | None) -> str:
    if nps is None:
        return '<div class="diverging"></div>'
    width = abs(nps) / 2
    left = 50 if nps >= 0 else 50 - width
    return (
        f'<div class="diverging"><span class="{_tone(nps)}" '
        f'style="left:{left:.2f}%;width:{width:.2f}%"></span></div>'
    )


def _comments(comments: tuple[DetractorComment, ...]) -> str:
    if not comments:
        return _empty("No detractor comments in this period.")
    rows = "".join(
        f'<tr><td class="date">{escape(_day(c.responded_at))}</td>'
        f"<td>{escape(c.account) if c.account else '<span class=unset>—</span>'}</td>"
        f'<td class="num bad">{c.nps}</td><td class="comment">{escape(c.comment)}</td></tr>'
        for c in comments
    )
    return (
        '<table class="comments"><thead><tr><th>Date</th><th>Account</th>'
        f'<th class="num">Score</th><th>Comment</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def _count(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.1f}%"


def _tone(nps: float | None) -> str:
    if nps is None or round(nps) == 0:
        return ""
    return "good" if nps > 0 else "bad"


def _day(value: date) -> str:
    return value.strftime("%d %b %Y %H:%M" if isinstance(value, datetime) else "%d %b %Y")


_STYLE = """
:root { --ink:#1f2933; --muted:#7b8794; --line:#e4e7eb; --bg:#f5f7fa; --accent:#2563eb;
        --good:#16a34a; --bad:#dc2626; --mid:#f59e0b; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.5 Inter, "Segoe UI", Helvetica, Arial, sans-serif; }
header { background:#111827; color:white; padding:28px 40px; }
header h1 { margin:0; font-size:24px; font-weight:600; }
header p { margin:4px 0 0; color:#cbd2d9; }
main { max-width:1200px; margin:0 auto; padding:24px 40px 48px; }
section { background:white; border:1px solid var(--line); border-radius:10px;
          padding:20px 24px; margin-top:20px; }
h2 { margin:0 0 12px; font-size:17px; font-weight:600; }
h2 small, h3 code { color:var(--muted); font-weight:400; font-size:12px; }
h3 { margin:0 0 8px; font-size:15px; }
.cards { display:grid; grid-template-columns:repeat(5, 1fr); gap:16px; }
.card { background:white; border:1px solid var(--line); border-radius:10px; padding:16px 18px;
        border-top:4px solid var(--accent); }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.05em; }
.card .value { font-size:32px; font-weight:700; margin:4px 0; }
.card .note { color:var(--muted); font-size:12px; }
.card.good { border-top-color:var(--good); } .card.good .value { color:var(--good); }
.card.bad { border-top-color:var(--bad); } .card.bad .value { color:var(--bad); }
.bands { display:flex; height:8px; border-radius:4px; overflow:hidden; margin-top:8px; }
.bands .promoters { background:var(--good); } .bands .passives { background:var(--mid); }
.bands .detractors { background:var(--bad); }
.segments { display:grid; grid-template-columns:repeat(auto-fill, minmax(500px, 1fr)); gap:24px; }
table { width:100%; border-collapse:collapse; }
th { text-align:left; color:var(--muted); font-weight:500; font-size:12px;
     border-bottom:1px solid var(--line); padding:6px 8px; }
td { border-bottom:1px solid var(--line); padding:6px 8px; vertical-align:top; }
.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.good { color:var(--good); font-weight:600; } td.bad { color:var(--bad); font-weight:600; }
tr.few td { color:var(--muted); } tr.few td.good, tr.few td.bad { font-weight:400; }
tr.more td { color:var(--muted); font-style:italic; }
.badge { display:inline-block; margin-left:6px; padding:0 6px; border-radius:8px;
         background:#fef3c7; color:#92400e; font-size:11px; }
.unset { color:var(--muted); font-style:italic; }
.diverging { position:relative; height:12px; min-width:140px; background:var(--bg);
             border-radius:3px; margin-top:4px; }
.diverging::after { content:""; position:absolute; left:50%; top:-2px; bottom:-2px;
                    border-left:1px solid var(--muted); }
.diverging span { position:absolute; top:0; bottom:0; background:var(--muted); }
.diverging span.good { background:var(--good); } .diverging span.bad { background:var(--bad); }
.comments .date { white-space:nowrap; color:var(--muted); }
.comments .comment { white-space:pre-wrap; }
.empty { color:var(--muted); font-style:italic; }
.highlights { list-style:none; margin:0; padding:0; display:flex; gap:32px; flex-wrap:wrap; }
.highlights .label { color:var(--muted); font-size:12px; text-transform:uppercase;
                     letter-spacing:.05em; margin-right:6px; }
.highlights .good { color:var(--good); font-weight:600; }
.highlights .bad { color:var(--bad); font-weight:600; }
footer { color:var(--muted); font-size:12px; margin-top:24px; }
@media (max-width: 900px) { .cards { grid-template-columns:repeat(2, 1fr); } }
"""

_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$style</style>
<script>$plotly_js</script>
</head>
<body>
<header>
  <h1>CustomerGauge NPS report</h1>
  <p>Period: $period · filters: $filters · generated $generated_at · from $source</p>
</header>
<main>
  <div class="cards">$cards</div>
  $highlights
  <section id="over-time"><h2>NPS and responses over time <small>per $granularity</small></h2>
    $over_time</section>
  <section id="segments"><h2>NPS by segment <small>values with fewer than $min_trusted
    responses are marked too few to trust</small></h2>
    <div class="segments">$segments</div></section>
  <section id="drivers"><h2>Drivers <small>ranked by the NPS of the responses naming the
    driver minus the NPS of those that don't; fewer than $min_trusted on either side is
    marked too few</small></h2>$drivers</section>
  <section id="topics"><h2>Topics <small>the tags most frequent among detractors and among
    promoters; share of that band's responses</small></h2>$topics</section>
  <section id="response-rate"><h2>Response rate over time <small>per month the invitations were
    sent: how many were answered, and the median time to answer</small></h2>
    $response_rate</section>
  <section id="funnel"><h2>Survey funnel <small>invitations sent in the period; each stage
    counts those that reached it or a later one</small></h2>$funnel</section>
  <section id="comments"><h2>Latest detractor comments</h2>$comments</section>
  <footer>Promoters score 9-10, passives 7-8, detractors 0-6; NPS = % promoters − % detractors
    (−100 to 100). Days, weeks and times in $timezone. Generated by cgsync $version.</footer>
</main>
</body>
</html>
""")
