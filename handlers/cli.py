"""The `incident-bot` command line (see the contract in INTERFACE.md)."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import ConfigError, Mode, Settings, load_settings
from bot.wording import counted

if TYPE_CHECKING:
    from bot.postmortem.service import ChartFile

log = logging.getLogger("incident_bot")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(_values_kept(list(sys.argv[1:] if argv is None else argv)))
    return int(args.run(args) or 0)


# Options whose value may start with a dash (`--since -5d`): argparse would take such a value for an
# option and answer "expected one argument"; joined as `--since=-5d`, the bot's own check explains it.
DASHED_VALUES = ("--since",)


def _values_kept(argv: list[str]) -> list[str]:
    joined: list[str] = []
    words = iter(argv)
    for word in words:
        if word in DASHED_VALUES:
            value = next(words, None)
            joined.append(word if value is None else f"{word}={value}")
        else:
            joined.append(word)
    return joined


def serve(args: argparse.Namespace) -> int:
    mode: Mode = "socket" if args.socket_mode else "http"
    settings = _settings_or_exit(mode)
    from slack_bolt.error import BoltError

    from handlers.app import build_runtime
    from handlers.logs import configure_logging
    from storage.database import safe_url

    configure_logging(settings.secrets(), json_lines=args.log_format == "json")
    for warning in settings.warnings:
        log.warning(warning)
    log.info("store: %s", safe_url(settings.env.database_url))
    try:
        runtime = build_runtime(settings, mode=mode)
    except BoltError as error:
        print(f"incident-bot: Slack refused the bot token: {error}. Check SLACK_BOT_TOKEN and SLACK_API_URL.", file=sys.stderr)
        return 1
    runtime.resume()
    _stop_on_sigterm()
    # What start-up made (modules, Bolt's app, SQLAlchemy's mappers, Slack's models: most of the heap) is
    # moved out of the collector's reach: a full collection under load then walks only what requests
    # made. Those walks were the bot's tail: message ack p99 at 100/s from 8-11 ms to 5-7 ms here.
    gc.collect()
    gc.freeze()
    try:
        from handlers.http import BotWsgiApp, HttpServer

        if mode == "socket":
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            # Health, metrics and the webhooks (PagerDuty, Opsgenie, Alertmanager) are still HTTP; Slack itself is not.
            side = HttpServer(BotWsgiApp(runtime, slack_events=False), host=args.host, port=args.port).start()
            log.info("serving Slack over Socket Mode; /healthz, /metrics and /webhooks/… at %s", side.url)
            handler = SocketModeHandler(runtime.app, settings.env.slack_app_token)
            try:
                handler.start()
            finally:
                handler.close()
                side.stop()
        else:
            server = HttpServer(BotWsgiApp(runtime), host=args.host, port=args.port)
            log.info("serving Slack at %s/slack/events", server.url)
            server.run()
    except KeyboardInterrupt:
        log.info("stopping: finishing the work already acknowledged")
    finally:
        runtime.close()
    return 0


def demo(args: argparse.Namespace) -> int:
    from handlers.demo import MINUTES_PER_SECOND, run_demo

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _stop_on_sigterm()  # a SIGTERM unwinds like Ctrl-C, so the demo still stops all it started
    pace = MINUTES_PER_SECOND if args.minutes_per_second is None else args.minutes_per_second
    return run_demo(diag_url=args.diag_url, use_postgres=not args.no_diag, minutes_per_second=pace)


def migrate(args: argparse.Namespace) -> int:
    settings = _settings_or_exit(None)
    from storage.database import current_revision, make_engine, safe_url
    from storage.database import migrate as run_migrations

    engine = make_engine(settings.env.database_url)
    try:
        run_migrations(engine)
        print(f"{safe_url(settings.env.database_url)}: schema at revision {current_revision(engine)}")
    finally:
        engine.dispose()
    return 0


def postmortem(args: argparse.Namespace) -> int:
    """Print the latest drafted postmortem (or the version asked for). No Slack is needed: it reads the store."""
    settings = _settings_or_exit(None)
    from sqlalchemy.exc import SQLAlchemyError

    from bot.clock import SystemClock
    from bot.incidents.service import IncidentService
    from bot.postmortem.service import PostmortemService
    from storage.database import make_engine, make_session_factory, safe_url

    engine = make_engine(settings.env.database_url)
    try:
        sessions = make_session_factory(engine)
        incident = IncidentService(sessions, SystemClock()).find(args.incident)
        if incident is None:
            print(f"incident-bot: no incident {args.incident!r} in {safe_url(settings.env.database_url)}; give its number (42) "
                  "or its channel name (inc-20261127-checkout).", file=sys.stderr)
            return 1
        service = PostmortemService.from_settings(settings, sessions, SystemClock())
        drafted = [v for v in service.versions(incident.id) if v.drafted]
        if args.version is not None:
            chosen = next((v for v in drafted if v.version == args.version), None)
            if chosen is None:
                have = ", ".join(str(v.version) for v in drafted) or "none"
                print(f"incident-bot: incident {incident.number} has no drafted version {args.version} (drafted: {have}).", file=sys.stderr)
                return 1
        else:
            chosen = drafted[-1] if drafted else None
        if chosen is None:
            print(f"incident-bot: incident {incident.number} has no drafted postmortem yet ({incident.status.label.lower()}); "
                  "this is a draft of what is recorded so far, not stored (its charts are named, not drawn). "
                  "`/incident postmortem` stores one.", file=sys.stderr)
            sys.stdout.write(service.preview(incident.id))
            return 0
        sys.stdout.write(chosen.markdown or "")
        return _postmortem_charts(service.charts(chosen.id), args.charts)
    except SQLAlchemyError as error:
        return _store_unreadable(settings.env.database_url, error)
    finally:
        engine.dispose()


def report(args: argparse.Namespace) -> int:
    """Write the report on incidents over time (report.md and its PNG charts) and print report.md's path.
    No Slack is needed: it reads the store and the configuration."""
    settings = _settings_or_exit(None)
    from pathlib import Path
    from zoneinfo import ZoneInfo

    from sqlalchemy.exc import SQLAlchemyError

    from bot.clock import SystemClock
    from bot.reporting.output import new_directory, write_report
    from bot.reporting.service import ReportService
    from bot.reporting.window import SinceError, parse_since
    from storage.database import make_engine, make_session_factory

    clock = SystemClock()
    now = clock.now()
    zone = ZoneInfo(settings.file.postmortem.timezone)
    try:
        since = parse_since(args.since, now, zone)
    except SinceError as error:
        print(f"incident-bot: {error}", file=sys.stderr)
        return 2
    directory = Path(args.output) if args.output else new_directory(Path.cwd(), f"incident-report-{now.astimezone(zone):%Y-%m-%d}")
    if directory.exists() and not directory.is_dir():
        print(f"incident-bot: --output {directory} is a file; give a directory (made if missing).", file=sys.stderr)
        return 2
    missing = _missing_sqlite_file(settings.env.database_url)
    if missing is not None:  # SQLite would create it: a report changes nothing, not even that
        print(f"incident-bot: there is no store at {missing}; set DATABASE_URL to the bot's store "
              "(the one `incident-bot serve` uses).", file=sys.stderr)
        return 1
    engine = make_engine(settings.env.database_url)
    try:
        found = ReportService.from_settings(settings, make_session_factory(engine), clock).report(since, now)
    except SQLAlchemyError as error:
        return _store_unreadable(settings.env.database_url, error)
    finally:
        engine.dispose()
    try:
        written = write_report(found, directory)
    except OSError as error:
        print(f"incident-bot: the report could not be written to {directory} ({error.strerror or error}).", file=sys.stderr)
        return 1
    print(written.report)
    return 0


def _postmortem_charts(charts: list[ChartFile], into: Path | None) -> int:
    """Say on stderr which charts the printed version references and where they are; with `into`, write
    them there under the names the Markdown uses."""
    if not charts:
        return 0
    names = ", ".join(c.filename for c in charts)
    if into is None:
        print(f"incident-bot: this version references {counted(len(charts), 'chart')} ({names}), "
              "uploaded to Slack with it and kept in the store; nothing was written to disk (`--charts DIR` writes them).",
              file=sys.stderr)
        return 0
    try:
        into.mkdir(parents=True, exist_ok=True)
        for chart in charts:
            (into / chart.filename).write_bytes(chart.png)
    except OSError as error:
        print(f"incident-bot: could not write the charts into {into}: {error.strerror or error}", file=sys.stderr)
        return 1
    print(f"incident-bot: wrote {names} into {into}", file=sys.stderr)
    return 0


def end_incident(args: argparse.Namespace) -> int:
    """`resolve` and `close`: the slash command's change, from the operator's shell (handlers.operator).
    Works without SLACK_BOT_TOKEN too: the change is saved, and `serve` shows it in Slack at its next start."""
    settings = _settings_or_exit(None)
    from bot.incidents.commands import UsageError
    from handlers.operator import end, parse

    try:
        command = parse(args.command_name, getattr(args, "summary", []))
    except UsageError as error:
        print(f"incident-bot: {error.message}\nUsage: {error.usage}", file=sys.stderr)
        return 1
    return end(settings, args.incident, command, out=sys.stdout, err=sys.stderr)


def check_config(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(mode="socket" if args.socket_mode else "http")
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        print(f"{counted(len(error.problems), 'problem')} found.", file=sys.stderr)
        return 1
    for warning in settings.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    where = settings.config_path or "(no file)"
    template = settings.postmortem_template.source if settings.postmortem_template else "the default"
    print(f"{where}: configuration OK ({counted(len(settings.file.teams), 'team')}, {counted(len(settings.file.diagnostics.targets), 'diagnostics target')}, "
          f"postmortem template: {template}).")
    return 0


def _settings_or_exit(mode: Mode | None) -> Settings:
    try:
        return load_settings(mode=mode)
    except ConfigError as error:
        for problem in error.problems:
            print(f"incident-bot: {problem}", file=sys.stderr)
        raise SystemExit(1) from None


def _stop_on_sigterm() -> None:
    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="incident-bot", description="ChatOps incident response for Slack.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve_parser = commands.add_parser("serve", help="serve Slack over HTTP (default) or Socket Mode")
    serve_parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    serve_parser.add_argument("--port", type=int, default=3000, help="port to listen on (default 3000)")
    serve_parser.add_argument("--socket-mode", action="store_true", help="connect over Socket Mode (needs SLACK_APP_TOKEN)")
    serve_parser.add_argument("--log-format", choices=("text", "json"), default=os.environ.get("INCIDENT_BOT_LOG_FORMAT") or "text",
                              help="log lines for people (text) or one JSON object per line (json); "
                              "default: $INCIDENT_BOT_LOG_FORMAT, else text")
    serve_parser.set_defaults(run=serve)

    demo_parser = commands.add_parser("demo", help="run a whole incident on this machine against a simulated Slack")
    demo_parser.add_argument("--diag-url", metavar="URL",
                             help="the PostgreSQL to leak connections into, as a SQLAlchemy URL "
                             "(default: 127.0.0.1:5432 as postgres, else a throwaway server)")
    demo_parser.add_argument("--no-diag", action="store_true",
                             help="tell the story without the leak, the watchdog and /incident diag")
    demo_parser.add_argument("--minutes-per-second", type=float, metavar="N",
                             help="the story's pace: N of its minutes per real second, above 0 and at most 5, "
                             "the fastest at which it keeps its hours (default 5: its 08:50 to 11:50 in about 40 s)")
    demo_parser.set_defaults(run=demo)

    migrate_parser = commands.add_parser("migrate", help="bring the bot's database to the newest schema")
    migrate_parser.set_defaults(run=migrate)

    postmortem_parser = commands.add_parser("postmortem", help="print the drafted postmortem of an incident (Markdown)")
    postmortem_parser.add_argument("incident", metavar="INCIDENT", help="the incident's number (42) or channel name")
    postmortem_parser.add_argument("--version", type=int, help="an earlier drafted version (default: the latest)")
    postmortem_parser.add_argument("--charts", type=Path, metavar="DIR",
                                   help="also write the version's chart PNGs into DIR, under the names its Markdown uses")
    postmortem_parser.set_defaults(run=postmortem)

    report_parser = commands.add_parser("report", help="write a Markdown report with PNG charts of incidents over time")
    report_parser.add_argument("--since", default="90d", metavar="SINCE",
                               help="the incidents declared since: <n>d, <n>w or an ISO date (YYYY-MM-DD) (default 90d)")
    report_parser.add_argument("--output", metavar="DIR",
                               help="the directory for report.md and its charts, made if missing "
                               "(default: a new incident-report-<date> in the working directory)")
    report_parser.set_defaults(run=report)

    resolve_parser = commands.add_parser("resolve", help="resolve an incident from the shell (e.g. its channel was archived)")
    resolve_parser.add_argument("incident", metavar="INCIDENT", help="the incident's number (42) or channel name")
    resolve_parser.add_argument("summary", metavar="SUMMARY", nargs="*", default=[], help="what resolved it (the rest of the line)")
    resolve_parser.set_defaults(run=end_incident, command_name="resolve")

    close_parser = commands.add_parser("close", help="close an incident from the shell and draft its postmortem")
    close_parser.add_argument("incident", metavar="INCIDENT", help="the incident's number (42) or channel name")
    close_parser.set_defaults(run=end_incident, command_name="close")

    check_parser = commands.add_parser("check-config", help="validate the configuration file and the environment")
    check_parser.add_argument("--socket-mode", action="store_true", help="check for Socket Mode instead of HTTP mode")
    check_parser.set_defaults(run=check_config)
    return parser



def _store_unreadable(database_url: str, error: Exception) -> int:
    """Say which store could not be read (its URL without the password) and what to check; exit 1."""
    from storage.database import safe_url

    print(f"incident-bot: the store at {safe_url(database_url)} could not be read ({type(error).__name__}); "
          "is DATABASE_URL right, and has `incident-bot migrate` run?", file=sys.stderr)
    return 1


def _missing_sqlite_file(database_url: str) -> str | None:
    """The path of a SQLite store file that does not exist (opening it would create it), else None."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    from pathlib import Path

    return None if Path(url.database).exists() else url.database


if __name__ == "__main__":
    sys.exit(main())
