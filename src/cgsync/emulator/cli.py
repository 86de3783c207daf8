"""`cgsync emulator`: serve a local CustomerGauge API until Ctrl-C."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from cgsync.emulator import settings

if TYPE_CHECKING:
    from cgsync.emulator._config import EmulatorConfig

_FAULTS = "Faults (deterministic by seed)"


def _iso_instant(text: str) -> datetime:
    """`--start` in any ISO 8601 form: `Z`, an offset, or none (UTC)."""
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 date-time, e.g. 2026-11-01T08:00:00Z"
        ) from None


def emulator_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = settings.DEFAULT_HOST,
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = (
        settings.DEFAULT_PORT
    ),
    records: Annotated[
        int, typer.Option(help="Invitations already sent when the clock starts.")
    ] = settings.DEFAULT_RECORDS,
    seed: Annotated[int, typer.Option(help="Same seed, same data.")] = settings.DEFAULT_SEED,
    timezone: Annotated[
        str, typer.Option(help="The system's time zone (IANA name); dates are printed in it.")
    ] = settings.DEFAULT_TIMEZONE,
    start: Annotated[
        datetime | None,
        typer.Option(
            parser=_iso_instant,
            metavar="ISO-8601",
            help="Where the clock starts, ISO 8601, UTC unless it says otherwise "
            f"(default {settings.DEFAULT_START:%Y-%m-%dT%H:%M:%SZ}).",
        ),
    ] = None,
    history_days: Annotated[
        int, typer.Option(help="Days before the start over which the records were sent.")
    ] = settings.DEFAULT_HISTORY_DAYS,
    speed: Annotated[
        float,
        typer.Option(help="Simulated seconds per real second (0: only the admin API moves it)."),
    ] = 1.0,
    responses_order: Annotated[
        str,
        typer.Option(
            help="How v7 responses are listed: answer (by answer sequence) or record (by the "
            "survey record's key: late answers land behind a stored cursor)."
        ),
    ] = "answer",
    erasures: Annotated[
        float,
        typer.Option(
            help="Share of records (0 to 1) erased at the source 5 days after they were sent: "
            "gone from every listing."
        ),
    ] = 0.0,
    edits: Annotated[
        bool,
        typer.Option(
            "--edits",
            help="Change responses after the answer (comment +12 h, follow-up +24 h, a tag +48 h).",
        ),
    ] = False,
    refuse_answer_period: Annotated[
        bool,
        typer.Option(
            "--refuse-answer-period",
            help="Answer 422 to period[field]=date_survey_response (known only from another "
            "client).",
        ),
    ] = False,
    value_variants: Annotated[
        bool,
        typer.Option(
            "--value-variants",
            help="Print values in every form the vendor's pages allow (ISO T, Z, offsets, "
            "fractions, empty and zero dates, numbers as strings, missing fields, null lists).",
        ),
    ] = False,
    client_id: Annotated[
        str, typer.Option(help="Client id to accept.")
    ] = settings.DEFAULT_CLIENT_ID,
    client_secret: Annotated[
        str, typer.Option(help="Client secret to accept.", envvar="CGSYNC_EMULATOR_CLIENT_SECRET")
    ] = settings.DEFAULT_CLIENT_SECRET,
    token_ttl: Annotated[
        int, typer.Option(help="Token lifetime in seconds.", rich_help_panel=_FAULTS)
    ] = settings.DEFAULT_TOKEN_TTL_SECONDS,
    rate_limit: Annotated[
        float,
        typer.Option(
            help="Data requests per second before 429 (0: none).", rich_help_panel=_FAULTS
        ),
    ] = 0.0,
    rate_429: Annotated[
        float, typer.Option(help="Chance of a 429.", rich_help_panel=_FAULTS)
    ] = 0.0,
    rate_5xx: Annotated[
        float, typer.Option(help="Chance of a 500, 502 or 503.", rich_help_panel=_FAULTS)
    ] = 0.0,
    rate_drop: Annotated[
        float, typer.Option(help="Chance of a dropped connection.", rich_help_panel=_FAULTS)
    ] = 0.0,
    rate_truncate: Annotated[
        float, typer.Option(help="Chance of a truncated body.", rich_help_panel=_FAULTS)
    ] = 0.0,
    latency_ms: Annotated[
        int, typer.Option(help="Added latency per data request.", rich_help_panel=_FAULTS)
    ] = 0,
    retry_after: Annotated[
        int, typer.Option(help="Retry-After of an injected 429, seconds.", rich_help_panel=_FAULTS)
    ] = 1,
) -> None:
    """Serve a local CustomerGauge API emulator (auth host and API host in one)."""
    # Imported here: the emulator's model, numpy and the web stack are not needed for `--help`.
    from cgsync.emulator._config import EmulatorConfig
    from cgsync.emulator._faults import FaultSettings
    from cgsync.emulator._server import build_server, listening_socket
    from cgsync.emulator._state import EmulatorState

    try:
        faults = FaultSettings(
            rate_429=rate_429,
            rate_5xx=rate_5xx,
            rate_drop=rate_drop,
            rate_truncate=rate_truncate,
            latency_ms=latency_ms,
            token_ttl_seconds=token_ttl,
            rate_limit=rate_limit,
            retry_after_seconds=retry_after,
        )
        config = EmulatorConfig(
            records=records,
            seed=seed,
            timezone=timezone,
            start=_utc(start) if start else settings.DEFAULT_START,
            history_days=history_days,
            speed=speed,
            client_id=client_id,
            client_secret=client_secret,
            faults=faults,
            responses_order=responses_order,
            erasures=erasures,
            edits=edits,
            refuse_answer_period=refuse_answer_period,
            value_variants=value_variants,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    try:
        sock = listening_socket(host, port)
    except OSError as error:
        typer.echo(
            f"Error: cannot listen on {host}:{port} ({error.strerror}); pick another --port",
            err=True,
        )
        raise typer.Exit(1) from None
    state = EmulatorState(config)
    bound_port = sock.getsockname()[1]
    base_url = f"http://{host}:{bound_port}"
    typer.echo(_banner(config, base_url))
    try:
        build_server(state, log_level="warning").run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn has already shut down; it re-raises the signal it caught
    finally:
        sock.close()
    typer.echo("Emulator stopped.")


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _banner(config: EmulatorConfig, base_url: str) -> str:
    """What to connect to. Only the demo secret is printed: it is public anyway."""
    demo = config.client_secret == settings.DEFAULT_CLIENT_SECRET
    secret = config.client_secret if demo else "(the one you gave)"
    return "\n".join(
        [
            (
                f"CustomerGauge API emulator: {config.records:,} records, seed {config.seed}, "
                f"time zone {config.timezone}"
            ),
            f"  clock        {config.start.isoformat()} at {config.speed:g}x",
            f"  token URL    {base_url}{settings.TOKEN_PATH}",
            (
                f"  API URL      {base_url}  ({settings.V7_NON_RESPONSES_PATH}, "
                f"{settings.V7_RESPONSES_PATH}, {settings.V6_RESPONSES_PATHS[0]})"
            ),
            f"  client id    {config.client_id}",
            f"  secret       {secret}",
            f"  admin        {base_url}/_admin/clock | truth | faults | stats",
            "Press Ctrl-C to stop.",
        ]
    )
