"""The report's figures, aggregated in the lake with portable SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cgsync._exceptions import ConfigError
from cgsync._lake_sql import LakeSql
from cgsync._views import survey_funnel_sql
from cgsync.report import settings
from cgsync.report._models import (
    DetractorComment,
    Driver,
    Funnel,
    Granularity,
    Headline,
    MonthRate,
    NpsScore,
    PeriodScore,
    ReportFigures,
    Segment,
    SegmentFilter,
    SegmentValue,
    Topic,
    Topics,
)

_BANDS = (
    f"SUM(CASE WHEN nps >= {settings.PROMOTER_MIN} THEN 1 ELSE 0 END), "
    f"SUM(CASE WHEN nps > {settings.DETRACTOR_MAX} AND nps < {settings.PROMOTER_MIN} "
    "THEN 1 ELSE 0 END), "
    f"SUM(CASE WHEN nps <= {settings.DETRACTOR_MAX} THEN 1 ELSE 0 END)"
)
"""Promoters, passives and detractors of the rows in an aggregate."""


@dataclass(frozen=True)
class _Period:
    """Whole days in `zone` from `since` through `until`, both inclusive; either may be open."""

    since: date | None
    until: date | None
    zone: ZoneInfo

    def where(self, column: str) -> tuple[str, list[datetime]]:
        """A SQL condition keeping `column` inside the period, and its parameters."""
        conditions, params = [f"{column} IS NOT NULL"], []
        if self.since is not None:
            conditions.append(f"{column} >= %s")
            params.append(datetime.combine(self.since, time(), tzinfo=self.zone))
        if self.until is not None:
            conditions.append(f"{column} < %s")
            params.append(datetime.combine(self.until + timedelta(days=1), time(), self.zone))
        return " AND ".join(conditions), params

    def local(self, value: datetime) -> datetime:
        """A timestamp from the lake (UTC) as wall-clock time in the period's zone."""
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return aware.astimezone(self.zone)


def compute_figures(
    lake: LakeSql,
    *,
    since: date | None = None,
    until: date | None = None,
    segment: str | None = None,
    segment_filters: Sequence[tuple[str, str]] = (),
    timezone: str = "UTC",
) -> ReportFigures:
    """Aggregate every figure of the report for the period from the lake's tables.

    Days, weeks and months are those of `timezone` (IANA), so they match the CustomerGauge
    system's own calendar when given its zone. `segment_filters` are (field, value) pairs:
    values of one field are alternatives, different fields must all match.
    """
    if since is not None and until is not None and since > until:
        raise ConfigError(f"--since {since} is after --until {until}")
    reader = _FigureReader(lake, _Period(since, until, _zone(timezone)), segment_filters)
    funnel = reader.funnel()
    headline = reader.headline(funnel)
    granularity, over_time = reader.over_time()
    return ReportFigures(
        source=lake.description,
        since=since,
        until=until,
        timezone=timezone,
        generated_at=datetime.now(UTC),
        headline=headline,
        granularity=granularity,
        over_time=over_time,
        segments=reader.segments(segment),
        funnel=funnel,
        detractor_comments=reader.detractor_comments(),
        filters=reader.filters,
        drivers=reader.drivers(headline.score),
        topics=reader.topics(headline.score),
        response_rate_by_month=reader.response_rate_by_month(),
    )


class _FigureReader:
    def __init__(
        self, lake: LakeSql, period: _Period, segment_filters: Sequence[tuple[str, str]] = ()
    ) -> None:
        self._lake = lake
        self._period = period
        responses, response_columns = _first_table(lake, settings.RESPONSE_TABLES)
        if response_columns is None:
            raise ConfigError(
                f"the lake has no {settings.RESPONSE_TABLES[0]} table: run `cgsync sync` first"
            )
        self._responses_name = responses
        self._response_columns = response_columns
        self._responses = lake.table(responses)
        self._funnel, self._funnel_columns = _funnel_relation(lake, responses, response_columns)
        self.filters = _resolve_filters(segment_filters, self._segment_columns())
        response_filter, response_filter_params = self._filter_sql(set(response_columns))
        self._funnel_filter, self._funnel_filter_params = self._filter_sql(
            set(self._funnel_columns)
        )
        self._answered_where, self._answered_params = period.where("date_survey_response")
        self._answered_where += f" AND nps IS NOT NULL AND {response_filter}"
        self._answered_params += response_filter_params
        self._sent_where, self._sent_params = period.where("date_sent")
        self._sent_where += f" AND {self._funnel_filter}"
        self._sent_params += self._funnel_filter_params
        self._ensure_not_empty()

    def _segment_columns(self) -> list[str]:
        return sorted(c for c in self._funnel_columns if c.startswith(settings.SEGMENT_PREFIX))

    def _filter_sql(self, columns: set[str]) -> tuple[str, list[str]]:
        """The filters as one SQL condition on a relation with `columns`, and its parameters.

        A relation without a filtered column has no row that matches (the responses table lacks
        a segment column that only invitations have).
        """
        conditions, params = ["1 = 1"], []
        for segment_filter in self.filters:
            if segment_filter.column not in columns:
                conditions.append("1 = 0")
                continue
            marks = ", ".join("%s" for _ in segment_filter.values)
            conditions.append(f"{self._lake.column(segment_filter.column)} IN ({marks})")
            params.extend(segment_filter.values)
        return " AND ".join(conditions), params

    def _ensure_not_empty(self) -> None:
        for relation in (self._responses, self._funnel):
            if self._lake.rows(f"SELECT 1 FROM {relation} LIMIT 1"):
                return
        raise ConfigError("the lake holds no responses or invitations yet: run `cgsync sync`")

    def headline(self, funnel: Funnel) -> Headline:
        ((promoters, passives, detractors),) = self._lake.rows(
            f"SELECT {_BANDS} FROM {self._responses} WHERE {self._answered_where}",
            *self._answered_params,
        )
        return Headline(
            score=NpsScore(promoters or 0, passives or 0, detractors or 0),
            invitations=funnel.sent,
            answered=funnel.responded,
            failed=funnel.failed,
        )

    def over_time(self) -> tuple[Granularity, tuple[PeriodScore, ...]]:
        """NPS per week or month, the unit chosen from the span; empty buckets included."""
        ((first, last),) = self._lake.rows(
            "SELECT MIN(date_survey_response), MAX(date_survey_response) "
            f"FROM {self._responses} WHERE {self._answered_where}",
            *self._answered_params,
        )
        if first is None:
            return "week", ()
        start = self._period.since or self._period.local(first).date()
        end = self._period.until or self._period.local(last).date()
        granularity: Granularity = (
            "week" if (end - start).days <= settings.WEEKLY_MAX_SPAN_DAYS else "month"
        )
        # AT TIME ZONE turns the UTC instant into the zone's wall-clock time (DuckDB, PostgreSQL).
        local = f"date_survey_response AT TIME ZONE '{self._period.zone.key}'"
        rows = self._lake.rows(
            f"SELECT date_trunc('{granularity}', {local}) AS bucket, {_BANDS} "
            f"FROM {self._responses} WHERE {self._answered_where} GROUP BY bucket",
            *self._answered_params,
        )
        scores = {_as_date(bucket): NpsScore(p, m, d) for bucket, p, m, d in rows}
        return granularity, tuple(
            PeriodScore(bucket, scores.get(bucket, NpsScore()))
            for bucket in _buckets(granularity, start, end)
        )

    def segments(self, only: str | None) -> tuple[Segment, ...]:
        """NPS per value of each `properties__*` column, including values nobody answered.

        Read from `survey_funnel`, whose segment columns merge the response's and the
        invitation's. One scan for all columns: GROUPING SETS groups by each on its own.
        """
        columns = self._segment_columns()
        if only is not None:
            columns = [_resolve_segment(only, columns)]
        if not columns:
            return ()
        aliases = [f"segment_{index}" for index in range(len(columns))]
        selected = ", ".join(
            f"{self._lake.column(column)} AS {alias}"
            for column, alias in zip(columns, aliases, strict=True)
        )
        answered, params = self._period.where("date_responded")
        answered += f" AND nps IS NOT NULL AND {self._funnel_filter}"
        params += self._funnel_filter_params
        sent, sent_params = self._sent_where, self._sent_params
        rows = self._lake.rows(
            f"SELECT {', '.join(f'GROUPING({a})' for a in aliases)}, {', '.join(aliases)}, "
            f"{_BANDS} FROM (SELECT {selected}, CASE WHEN {answered} THEN nps END AS nps "
            # Values only invited in the period still get a row, with no responses.
            f"FROM {self._funnel} WHERE ({answered}) OR ({sent})) AS segment_rows "
            f"GROUP BY GROUPING SETS ({', '.join(f'({a})' for a in aliases)})",
            *params,
            *params,
            *sent_params,
        )
        values: list[list[SegmentValue]] = [[] for _ in columns]
        width = len(columns)
        for row in rows:
            index = list(row[:width]).index(0)  # the one column this row is grouped by
            value = row[width + index]
            promoters, passives, detractors = row[2 * width :]
            values[index].append(
                SegmentValue(
                    None if value is None else str(value),
                    NpsScore(promoters or 0, passives or 0, detractors or 0),
                )
            )
        return tuple(
            Segment(column, tuple(sorted(found, key=_largest_first)))
            for column, found in zip(columns, values, strict=True)
        )

    def funnel(self) -> Funnel:
        """Each stage counts every invitation that reached it or a later one."""
        ((sent, opened, clicked, responded, failed),) = self._lake.rows(
            "SELECT COUNT(*), "
            "SUM(CASE WHEN date_opened IS NOT NULL OR date_clicked IS NOT NULL "
            "OR date_responded IS NOT NULL THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN date_clicked IS NOT NULL OR date_responded IS NOT NULL "
            "THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN date_responded IS NOT NULL THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN failed THEN 1 ELSE 0 END) "
            f"FROM {self._funnel} WHERE {self._sent_where}",
            *self._sent_params,
        )
        return Funnel(sent, opened or 0, clicked or 0, responded or 0, failed or 0)

    def detractor_comments(self) -> tuple[DetractorComment, ...]:
        # dlt leaves out a column until some row has a value, so both may be absent.
        if "comment" not in self._response_columns:
            return ()
        account = "account__name" if "account__name" in self._response_columns else "NULL"
        rows = self._lake.rows(
            f"SELECT number_customergauge, date_survey_response, {account}, nps, comment "
            f"FROM {self._responses} WHERE {self._answered_where} "
            f"AND nps <= {settings.DETRACTOR_MAX} AND comment IS NOT NULL "
            "AND TRIM(comment) <> '' "
            "ORDER BY date_survey_response DESC, number_customergauge DESC "
            f"LIMIT {settings.LATEST_DETRACTOR_COMMENTS}",
            *self._answered_params,
        )
        return tuple(
            DetractorComment(cgid, self._period.local(answered_at), account_name, nps, comment)
            for cgid, answered_at, account_name, nps, comment in rows
        )

    def drivers(self, everyone: NpsScore) -> tuple[Driver, ...]:
        """Each driver's mentions and NPS against the rest of the period's responses."""
        found = self._child_table(settings.DRIVERS_SUFFIX, "name")
        if found is None:
            return ()
        table, columns = found
        name = self._lake.column("name")
        sentiment = f"LOWER(d.{self._lake.column('sentiment')})" if "sentiment" in columns else "''"
        # One row per response and driver: a response naming a driver twice counts once.
        rows = self._lake.rows(
            f"SELECT name, {_BANDS}, SUM(positive), SUM(negative) FROM ("
            f"SELECT d.{name} AS name, r.nps AS nps, "
            f"MAX(CASE WHEN {sentiment} = '{settings.POSITIVE}' THEN 1 ELSE 0 END) AS positive, "
            f"MAX(CASE WHEN {sentiment} = '{settings.NEGATIVE}' THEN 1 ELSE 0 END) AS negative "
            f"FROM {table} AS d JOIN ({self._answered_responses('nps')}) AS r "
            "ON r.number_customergauge = d.number_customergauge "
            f"WHERE d.{name} IS NOT NULL "
            f"GROUP BY d.{name}, r.number_customergauge, r.nps) AS mentions GROUP BY name",
            *self._answered_params,
        )
        drivers = []
        for driver, promoters, passives, detractors, positive, negative in rows:
            score = NpsScore(promoters or 0, passives or 0, detractors or 0)
            others = NpsScore(
                everyone.promoters - score.promoters,
                everyone.passives - score.passives,
                everyone.detractors - score.detractors,
            )
            drivers.append(Driver(str(driver), score, positive or 0, negative or 0, others))
        return tuple(sorted(drivers, key=_ranked))

    def topics(self, everyone: NpsScore) -> Topics:
        """The tags most frequent among the period's detractors and among its promoters."""
        found = self._child_table(settings.TAGS_SUFFIX, "value")
        if found is None:
            return Topics()
        table, _ = found
        value = self._lake.column("value")
        band = (
            f"CASE WHEN nps >= {settings.PROMOTER_MIN} THEN 'promoters' "
            f"WHEN nps <= {settings.DETRACTOR_MAX} THEN 'detractors' END AS band"
        )
        rows = self._lake.rows(
            f"SELECT r.band, t.{value}, COUNT(DISTINCT r.number_customergauge) "
            f"FROM {table} AS t JOIN ({self._answered_responses(band)}) AS r "
            "ON r.number_customergauge = t.number_customergauge "
            f"WHERE r.band IS NOT NULL AND t.{value} IS NOT NULL AND TRIM(t.{value}) <> '' "
            f"GROUP BY r.band, t.{value}",
            *self._answered_params,
        )
        totals = {"detractors": everyone.detractors, "promoters": everyone.promoters}
        by_band: dict[str, list[Topic]] = {"detractors": [], "promoters": []}
        for band_name, tag, responses in rows:
            total = totals[band_name]
            by_band[band_name].append(
                Topic(str(tag), responses, responses / total if total else None)
            )
        return Topics(
            **{
                name: tuple(
                    sorted(topics, key=lambda t: (-t.responses, t.tag))[: settings.TOPICS_SHOWN]
                )
                for name, topics in by_band.items()
            }
        )

    def response_rate_by_month(self) -> tuple[MonthRate, ...]:
        """Per month of sending: invitations, how many were answered, the median time taken."""
        local = f"date_sent AT TIME ZONE '{self._period.zone.key}'"
        delay = "EXTRACT(EPOCH FROM date_responded) - EXTRACT(EPOCH FROM date_sent)"
        rows = self._lake.rows(
            f"SELECT date_trunc('month', {local}) AS month, COUNT(*), "
            "SUM(CASE WHEN date_responded IS NOT NULL THEN 1 ELSE 0 END), "
            # NULL for the unanswered, which the median leaves out.
            f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {delay}) "
            f"FROM {self._funnel} WHERE {self._sent_where} GROUP BY month",
            *self._sent_params,
        )
        if not rows:
            return ()
        months = {
            _as_date(month): MonthRate(
                _as_date(month),
                sent,
                answered or 0,
                None if median is None else float(median) / 3600,
            )
            for month, sent, answered, median in rows
        }
        start = self._period.since or min(months)
        end = self._period.until or max(months)
        return tuple(
            months.get(month, MonthRate(month, 0, 0, None))
            for month in _buckets("month", start, end)
        )

    def _answered_responses(self, *columns: str) -> str:
        """The period's answered responses (within the filters): their CGID and `columns`."""
        return (
            f"SELECT number_customergauge, {', '.join(columns)} FROM {self._responses} "
            f"WHERE {self._answered_where}"
        )

    def _child_table(self, suffix: str, needed: str) -> tuple[str, tuple[str, ...]] | None:
        """The responses' child table of `suffix`, with its columns, if it has `needed`."""
        columns = self._lake.columns(f"{self._responses_name}__{suffix}")
        if columns is None or needed not in columns:
            return None
        return self._lake.table(f"{self._responses_name}__{suffix}"), columns


def _ranked(driver: Driver) -> tuple[bool, float, int, str]:
    difference = driver.nps_difference
    return (difference is None, -(difference or 0.0), -driver.mentions, driver.name)


def _resolve_filters(
    pairs: Sequence[tuple[str, str]], columns: Sequence[str]
) -> tuple[SegmentFilter, ...]:
    """`(field, value)` pairs as one filter per column, values in the order given."""
    values: dict[str, list[str]] = {}
    for field, value in pairs:
        column = _resolve_segment(field, columns)
        if value not in values.setdefault(column, []):
            values[column].append(value)
    return tuple(SegmentFilter(column, tuple(found)) for column, found in values.items())


def _funnel_relation(
    lake: LakeSql, responses: str, response_columns: tuple[str, ...]
) -> tuple[str, tuple[str, ...]]:
    """The `survey_funnel` view, or on destinations without views (files) the view's query."""
    if (columns := lake.columns(settings.FUNNEL_VIEW)) is not None:
        return lake.table(settings.FUNNEL_VIEW), columns
    status_columns = lake.columns(settings.NON_RESPONSES_TABLE)
    if status_columns is None:
        raise ConfigError(
            f"the lake has no {settings.FUNNEL_VIEW} view or {settings.NON_RESPONSES_TABLE} table:"
            " run `cgsync sync` first"
        )
    query = survey_funnel_sql(
        lake.table,
        lake.column,
        responses,
        {responses: response_columns, settings.NON_RESPONSES_TABLE: status_columns},
    )
    return f"({query}) AS {settings.FUNNEL_VIEW}", lake.query_columns(query)


def _largest_first(value: SegmentValue) -> tuple[int, bool, str]:
    return (-value.score.responses, value.value is None, value.value or "")


def _first_table(lake: LakeSql, names: Sequence[str]) -> tuple[str, tuple[str, ...] | None]:
    """The first of `names` the lake has, with its columns."""
    for name in names:
        if (columns := lake.columns(name)) is not None:
            return name, columns
    return names[0], None


def _resolve_segment(name: str, columns: Sequence[str]) -> str:
    """Accept `Account Manager (EU)`, `account_manager_eu` or `properties__account_manager_eu`."""
    wanted = _snake(name.removeprefix(settings.SEGMENT_PREFIX))
    for column in columns:
        if column.removeprefix(settings.SEGMENT_PREFIX) == wanted:
            return column
    known = ", ".join(c.removeprefix(settings.SEGMENT_PREFIX) for c in columns) or "none"
    raise ConfigError(f"unknown --segment {name!r}; the lake has: {known}")


def _snake(name: str) -> str:
    words = "".join(ch.lower() if ch.isalnum() else " " for ch in name).split()
    return "_".join(words)


def _buckets(granularity: Granularity, start: date, end: date) -> list[date]:
    bucket = _bucket_start(granularity, start)
    buckets = []
    while bucket <= end:
        buckets.append(bucket)
        if granularity == "week":
            bucket += timedelta(weeks=1)
        else:
            bucket = date(bucket.year + bucket.month // 12, bucket.month % 12 + 1, 1)
    return buckets


def _bucket_start(granularity: Granularity, day: date) -> date:
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _as_date(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown --timezone {name!r}: use an IANA name such as Europe/Amsterdam"
        ) from None
