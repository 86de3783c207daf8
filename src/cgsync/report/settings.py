"""Constants of the report: thresholds, limits and the lake's names it reads."""

from __future__ import annotations

DEFAULT_DESTINATION = "duckdb"
DEFAULT_DATASET = "customergauge"
DEFAULT_PIPELINE_NAME = "cgsync"
DEFAULT_OUT = "report.html"

RESPONSE_TABLES = ("responses", "responses_v6")
"""Where the sync keeps answers, in its order of preference: the v7 table, else the v6 one."""
NON_RESPONSES_TABLE = "non_responses"
FUNNEL_VIEW = "survey_funnel"
DRIVERS_SUFFIX = "drivers"
TAGS_SUFFIX = "tags"
"""The child tables of the responses table read: `responses__drivers`, `responses__tags`."""
POSITIVE, NEGATIVE = "positive", "negative"
"""A driver's sentiment, compared without regard to case."""
SEGMENT_PREFIX = "properties__"

# NPS bands as the industry defines them.
PROMOTER_MIN = 9
DETRACTOR_MAX = 6

MIN_TRUSTED_RESPONSES = 30
"""A segment value answered by fewer respondents is shown, but marked as too few to trust."""

LATEST_DETRACTOR_COMMENTS = 10

WEEKLY_MAX_SPAN_DAYS = 182
"""Periods up to about half a year are charted by week, longer ones by month."""

SEGMENT_ROWS_SHOWN = 25
"""Values per segment block in the page (largest first); `--json` carries them all."""

TOPICS_SHOWN = 8
"""Tags listed per band (detractors, promoters), most frequent first."""
