"""Constants of the emulator: defaults, the assumed parameter names, and the vocabulary of its data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

# Credentials the emulator accepts unless told otherwise. They are demo values, not secrets.
DEFAULT_CLIENT_ID: Final = "cgsync-demo"
DEFAULT_CLIENT_SECRET: Final = "cgsync-demo-secret"
DEFAULT_TOKEN_TTL_SECONDS: Final = 3600

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8000
DEFAULT_RECORDS: Final = 10_000
DEFAULT_SEED: Final = 0
DEFAULT_TIMEZONE: Final = "Europe/Amsterdam"
# A fixed start keeps the data a pure function of the seed: same seed, same bytes.
DEFAULT_START: Final = datetime(2025, 6, 2, 9, 0, tzinfo=UTC)
DEFAULT_HISTORY_DAYS: Final = 730

TOKEN_PATH: Final = "/oauth2/token"
V7_NON_RESPONSES_PATH: Final = "/v7/rest/sync/non-responses"
V7_RESPONSES_PATH: Final = "/v7/rest/sync/responses"
V6_RESPONSES_PATHS: Final = ("/v6/rest/responses", "/v6/responses")

V7_MAX_PER_PAGE: Final = 1000
V6_MAX_PER_PAGE: Final = 400
# Assumption: the vendor pages do not say what an omitted per_page means.
DEFAULT_PER_PAGE: Final = 100

# Assumptions: the vendor does not publish these two parameter names.
CGID_FILTER_PARAM: Final = "number_customergauge"
OUTBOUND_FILTER_PARAM: Final = "outbound_filter"

# Internal primary keys start at 1; the CGID is a fixed offset from the key.
CGID_OFFSET: Final = 1000

# Records are generated in blocks of this many keys, each from its own seeded generator.
BLOCK_SIZE: Final = 65_536

DAY: Final = 86_400
HOUR: Final = 3_600
# Bounds of the lifecycle, in seconds. The period filter relies on them to bound its scans.
MAX_BACKDATE: Final = 30 * DAY
MAX_ORDER_LEAD: Final = 14 * DAY
MAX_RESPONSE_DELAY: Final = 45 * DAY
MAX_FAILURE_DELAY: Final = 48 * HOUR

LATE_RATE: Final = 0.02
RESPONSE_RATE: Final = 0.35
FAILURE_RATE: Final = 0.06
OPEN_RATE: Final = 0.5
CLICK_RATE: Final = 0.45

STATUS_SENT: Final = "survey-sent"
STATUS_OPENED: Final = "survey-opened"
STATUS_CLICKED: Final = "survey-clicked"
FAILURE_STATUSES: Final = ("bounced", "undeliverable", "blocked")
# Index = status code used by the population.
STATUSES: Final = (STATUS_SENT, STATUS_OPENED, STATUS_CLICKED, *FAILURE_STATUSES)

EXPANSIONS_V7_NON_RESPONSES: Final = ("properties",)
EXPANSIONS_V7_RESPONSES: Final = ("properties", "drivers", "questions", "tags")

PERIOD_FIELDS_NON_RESPONSES: Final = ("date_creation", "date_order", "date_sent")
PERIOD_FIELDS_RESPONSES: Final = (*PERIOD_FIELDS_NON_RESPONSES, "date_survey_response")

# Segment fields, in the order they are listed. A reference of None is served as null.
COUNTRIES: Final = ("NL", "DE", "GB", "US", "FR", "BE", "ES", None)
COUNTRY_WEIGHTS: Final = (0.25, 0.2, 0.15, 0.15, 0.08, 0.07, 0.05, 0.05)
TOUCHPOINTS: Final = ("Relationship", "Transactional", "Onboarding", "Support", None)
TOUCHPOINT_WEIGHTS: Final = (0.35, 0.3, 0.15, 0.15, 0.05)
SEGMENT_FIELDS: Final = (
    "Country",
    "Division",
    "Touchpoint",
    "Key Contact",
    "Segment A",
    "Account Manager",
    "Account Manager (EU)",
)
OTHER_SEGMENT_VALUES: Final = {
    "Division": ("Global", "EMEA", "Americas", "APAC", None),
    "Key Contact": ("Yes", "No", None),
    "Segment A": ("Enterprise (1000+)", "Mid-market (100-999)", "SMB (<100)", None),
    "Account Manager": ("Anna de Vries", "Jörg Weiß", "Siobhán O'Neill", 'Marc "Mac" Dubois', None),
    "Account Manager (EU)": ("Łucja Nowak", "Pieter van 't Hof", "Zoë Ångström", None),
}
# Chance that a record lacks a segment field entirely.
MISSING_SEGMENT_RATE: Final = 0.05

# Assumption: the reporting filters a system might have set up for the outbound filter.
OUTBOUND_FILTERS: Final = {
    "country-nl": ("Country", "NL"),
    "country-de": ("Country", "DE"),
    "country-gb": ("Country", "GB"),
    "country-us": ("Country", "US"),
    "touchpoint-relationship": ("Touchpoint", "Relationship"),
}

NPS_WEIGHTS: Final = (0.03, 0.02, 0.02, 0.03, 0.03, 0.06, 0.06, 0.1, 0.18, 0.22, 0.25)
"""Chances of the scores 0-10 before the story's shifts: an NPS of +22."""

# The story the data tells, as a real system's does (docs/emulator.md, "The story"). A score is
# drawn from NPS_WEIGHTS with its uniform raised to a power: above 1 pulls it down (1.6: an NPS
# of about -9; 2.2: about -28), below 1 lifts it (0.85: about +33). A record's powers multiply.
TOUCHPOINT_SCORE_POWERS: Final = (1.0, 0.95, 1.0, 1.6, 1.0)
"""By TOUCHPOINTS: Support is clearly worse."""
COUNTRY_SCORE_POWERS: Final = (1.0, 0.85, 1.0, 1.0, 1.3, 1.0, 1.0, 1.0)
"""By COUNTRIES: DE a little better, FR a little worse."""
INCIDENT_SCORE_POWER: Final = 2.2
"""Answers given in the incident month (a delivery failure) score far lower."""
INCIDENT_MONTHS_BEFORE_START: Final = 4
"""The incident month is the calendar month (in the system's zone) this many before the
clock's start month: 2025-02 for the default start."""
TOUCHPOINT_RESPONSE_FACTORS: Final = (0.85, 1.15, 1.3, 0.75, 1.0)
"""By TOUCHPOINTS, times RESPONSE_RATE; weighted by TOUCHPOINT_WEIGHTS they average 1."""
SEASONAL_RESPONSE_SWING: Final = 0.2
"""The response rate swings by this share around its mean over the year: highest in
mid-January, lowest in mid-July."""
SEASONAL_PEAK_DAY: Final = 15
"""Day of the year (0-based) when the response rate peaks."""
LANGUAGES: Final = ("EN", "NL", "DE", "FR", "ES", "IT", "PL", "PT", "SV")
LANGUAGE_WEIGHTS: Final = (0.4, 0.15, 0.12, 0.1, 0.07, 0.05, 0.04, 0.04, 0.03)

FIRST_NAMES: Final = (
    "John",
    "Anna",
    "José",
    "Zoë",
    "Łukasz",
    "Søren",
    "Chloé",
    "Björn",
    "Anaïs",
    "François",
    "Małgorzata",
    "Jürgen",
    "Ólafur",
    "Siân",
    "Nguyễn",
    "Сергей",
    "Αλέξανδρος",
    "美咲",
    "Mohammed",
    "Priya",
    "Seán",
    "Ingrid",
    "Tomáš",
    "Ayşe",
    "Dạ",
    "Émile",
    "Kateřina",
    "O'Neil",
    "Renée",
    'Jan "JJ"',
)
LAST_NAMES: Final = (
    "Doe",
    "Müller",
    "van der Berg",
    "O'Connor",
    "García Márquez",
    "Nørgaard",
    "Kowalczyk",
    "D'Angelo",
    "Smith",
    "Østergård",
    "Nakamura",
    "Иванова",
    "Papadopoulos",
    "Öztürk",
    "Dvořák",
    "de la Cruz",
    "Ng",
    "Łęcki",
    "Van Dijk",
    "Ó Briain",
    "Schröder",
    "Jansen",
    "Back\\slash",
)
COMPANIES: Final = (
    "ACME",
    "Globex B.V.",
    "Initech GmbH",
    'Umbrella "Health" Ltd.',
    "Müller & Söhne",
    "Back\\Office Solutions",
    "Société Générale d'Exemple",
    "Ωmega Systems",
    "東京トレーディング",
    "Nordic Fjørd AS",
    "Café Del Mar S.L.",
    "O'Reilly Freight",
    "Tiệm Bánh",
    "Zürich Re-Test AG",
)
ACCOUNTS_PER_COMPANY: Final = 40
"""Accounts of each company; an account's number is 10,000 x (company + 1) + its number."""
EMAIL_DOMAINS: Final = ("example.com", "example.org", "example.net", "mail.example.eu")
COMMENT_WORDS: Final = (
    "great",
    "service",
    "slow",
    "delivery",
    "the",
    "product",
    "works",
    '"fine"',
    "but",
    "pricing",
    "is",
    "too",
    "high",
    "naïve",
    "support",
    "was",
    "helpful",
    "C:\\temp\\invoice.pdf",
    "👍",
    "merci",
    "sehr",
    "gut",
    "¡excelente!",
    "não",
    "obrigado",
    "a\\b",
    "it's",
    "okay",
    "«best»",
    "worst",
    "日本語",
    "ümlaut",
    "— dash",
    "new\nline",
    "tab\there",
    "100%",
    "<b>bold</b>",
)
TAGS: Final = ("Onboarding", "Pricing", "Support", "Product Quality", "Delivery", "Billing")
DRIVERS: Final = ((1, "Price"), (2, "Quality"), (3, "Support"), (4, "Delivery"), (5, "Ease of Use"))
SENTIMENTS: Final = ("positive", "neutral", "negative")
# Drivers and tags go with the score. Rates by band: (detractor, passive, promoter).
TAG_RATES: Final = (
    (0.1, 0.3, 0.3, 0.1, 0.45, 0.3),
    (0.2, 0.2, 0.2, 0.2, 0.2, 0.2),
    (0.3, 0.1, 0.15, 0.45, 0.05, 0.05),
)
"""By band, the chance of each of TAGS."""
DRIVER_MENTION_RATES: Final = (
    (0.35, 0.3, 0.35, 0.6, 0.15),
    (0.3, 0.3, 0.3, 0.3, 0.3),
    (0.25, 0.3, 0.25, 0.15, 0.5),
)
"""By band, the chance that a response names each of DRIVERS."""
DRIVER_SENTIMENT_BIASES: Final = (-0.1, 0.0, 0.0, -0.25, 0.2)
"""By DRIVERS: the chance of "positive" is 0.1 x score - 0.2 plus this; of "negative",
0.7 - 0.1 x score minus this (each kept within 0.02 and 0.95); "neutral" is the rest."""
INCIDENT_DRIVER: Final = "Delivery"
INCIDENT_MENTION_RATE: Final = 0.8
"""In the incident month, the chance that a detractor names INCIDENT_DRIVER (as a driver and
as a tag)."""
QUESTIONS: Final = (
    (7, "How likely are you to buy again?"),
    (8, "What should we improve?"),
    (9, "Did we solve your problem?"),
)
ANSWERS: Final = ("Very likely", "Faster shipping", "Yes", "No", "Not sure", 'Cheaper "plans"')
FOLLOW_UP_DETAILS: Final = ("Call me back", "Please e-mail me", "1234567890", "Ask for Zoë")
SURVEY_LINK_PREFIX: Final = "https://survey.eu.customergauge.com/r/"

# How the API prints a date (in the system's time zone); `value_variants` prints others too.
DATE_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

# How v7 responses are listed ("ordered by our internal primary key"): by answer sequence, or
# by the survey record's key, which puts a late answer to an old invitation behind the cursor.
RESPONSES_ORDERS: Final = ("answer", "record")

# `edits`: the closed loop changes a response after it came in, at fixed delays after the
# answer. One response in EDIT_EVERY of each kind (by record index, shifted per kind).
EDIT_EVERY: Final = 4
COMMENT_EDIT_DELAY: Final = 12 * HOUR
FOLLOW_UP_EDIT_DELAY: Final = 24 * HOUR
TAG_EDIT_DELAY: Final = 48 * HOUR
EDITED_COMMENT_SUFFIX: Final = " (edited)"
EDITED_FOLLOW_UP: Final = {"requested": True, "details": "Called back by the account manager"}
ADDED_TAG: Final = "Follow-up"

# `erasures`: a share of records vanish from every listing (a GDPR erasure) this long after
# they were sent.
ERASE_AFTER: Final = 5 * DAY
