"""The SQL of the lake's views: `open_non_responses` and `survey_funnel`.

The queries are generated from the tables' current columns, because every new segment field
adds a `properties__*` column. The same SELECTs run over Delta tables through DuckDB
(`pipeline.dataset()`), which is how `cgsync status` counts open non-responses there.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from cgsync.settings import FAILURE_STATUSES, PRIMARY_KEY, PROPERTY_PREFIX

OPEN_NON_RESPONSES = "open_non_responses"
SURVEY_FUNNEL = "survey_funnel"
VIEWS = (OPEN_NON_RESPONSES, SURVEY_FUNNEL)

NON_RESPONSES = "non_responses"
RESPONSE_TABLES = ("responses", "responses_v6")
"""Where answers live, in order of preference: the v7 table, else the v6 one."""

Quote = Callable[[str], str]


def responses_table(tables: Collection[str]) -> str | None:
    """The table the views read answers from, or None when there is none yet."""
    return next((name for name in RESPONSE_TABLES if name in tables), None)


def open_non_responses_sql(table: Quote, column: Quote, responses: str) -> str:
    """Non-responses whose CGID is not among the responses."""
    key = column(PRIMARY_KEY)
    return (
        f"SELECT n.* FROM {table(NON_RESPONSES)} AS n WHERE NOT EXISTS "
        f"(SELECT 1 FROM {table(responses)} AS r WHERE r.{key} = n.{key})"
    )


def survey_funnel_sql(
    table: Quote, column: Quote, responses: str, columns: Mapping[str, Collection[str]]
) -> str:
    """One row per CGID: its dates through the funnel, status, failure, nps and segments.

    `columns` maps each table name to its column names (for the `properties__*` columns).
    """
    key = column(PRIMARY_KEY)
    failures = ", ".join(f"'{status}'" for status in sorted(FAILURE_STATUSES))
    in_responses = set(columns.get(responses, ()))
    in_non_responses = set(columns.get(NON_RESPONSES, ()))
    properties = sorted(
        name for name in in_responses | in_non_responses if name.startswith(PROPERTY_PREFIX)
    )
    segment_columns = [
        f"{_coalesce(name, in_responses, in_non_responses, column)} AS {column(name)}"
        for name in properties
    ]
    select = [
        f"COALESCE(r.{key}, n.{key}) AS {key}",
        (
            f"CASE WHEN r.{key} IS NOT NULL THEN 'responded' ELSE n.{column('status')} END"
            f" AS {column('status')}"
        ),
        f"COALESCE(n.{column('date_sent')}, r.{column('date_email_sent')}) AS {column('date_sent')}",
        f"n.{column('date_opened')} AS {column('date_opened')}",
        f"n.{column('date_clicked')} AS {column('date_clicked')}",
        f"r.{column('date_survey_response')} AS {column('date_responded')}",
        f"COALESCE(n.{column('status')} IN ({failures}), FALSE) AS {column('failed')}",
        f"r.{column('nps')} AS {column('nps')}",
        *segment_columns,
    ]
    return (
        "SELECT " + ", ".join(select) + f" FROM {table(NON_RESPONSES)} AS n "
        f"FULL OUTER JOIN {table(responses)} AS r ON r.{key} = n.{key}"
    )


def _coalesce(name: str, in_responses: set[str], in_non_responses: set[str], column: Quote) -> str:
    """A segment column from the response if it has it, else from the non-response."""
    sources = [
        f"{alias}.{column(name)}"
        for alias, has in (("r", in_responses), ("n", in_non_responses))
        if name in has
    ]
    return sources[0] if len(sources) == 1 else f"COALESCE({', '.join(sources)})"


def view_statements(
    table: Quote, column: Quote, columns: Mapping[str, Collection[str]]
) -> list[str]:
    """DROP and CREATE statements for both views, or [] while a table they read is missing."""
    responses = responses_table(columns)
    if responses is None or NON_RESPONSES not in columns:
        return []
    queries = {
        OPEN_NON_RESPONSES: open_non_responses_sql(table, column, responses),
        SURVEY_FUNNEL: survey_funnel_sql(table, column, responses, columns),
    }
    statements = []
    for name, query in queries.items():
        # DROP then CREATE: PostgreSQL cannot CREATE OR REPLACE a view whose columns changed.
        statements.append(f"DROP VIEW IF EXISTS {table(name)}")
        statements.append(f"CREATE VIEW {table(name)} AS {query}")
    return statements
