"""The configuration file (TOML) and the environment, read once at start-up and validated.

Every problem is reported as one line that names the file (or variable) and the key, so an operator can
fix all of them in one pass: `incident-bot check-config` prints them all, `serve` refuses to start.
Secrets are never part of a message.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

if TYPE_CHECKING:
    from bot.postmortem.templates import PostmortemTemplate

DEFAULT_CONFIG_PATH = "incident-bot.toml"
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///incident-bot.db"
DEFAULT_PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_OPSGENIE_API_URL = "https://api.opsgenie.com"
DEFAULT_SPOOL_PATH = "incident-bot-spool.db"
REDACTED = "[redacted]"  # what stands where a secret was, in a log line or a postmortem

Mode = Literal["http", "socket"]


class ConfigError(Exception):
    """The configuration cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --- The TOML file's schema. `extra="forbid"` makes unknown keys an error; `strict=True` keeps TOML's
# types honest ("10" is not accepted where a number of minutes is expected).


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


ChannelId = Annotated[str, StringConstraints(pattern=r"^[CG][A-Z0-9]{2,}$")]
UserId = Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,}$")]
ChannelPrefix = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,19}$")]
Severity = Literal["sev1", "sev2", "sev3", "sev4"]


class SlackSection(_Section):
    announce_channel: ChannelId | None = None
    channel_prefix: ChannelPrefix = "inc"


class TeamSection(_Section):
    display_name: str | None = None
    pagerduty_routing_key: str | None = None
    opsgenie_api_key: Annotated[str, StringConstraints(min_length=1)] | None = None
    slack_members: list[UserId] = Field(default_factory=list)
    escalate_after_minutes: Annotated[int, Field(gt=0)] | None = None
    escalate_to: str | None = None
    # Pages for a private incident tell this team's providers its number and severity only; true: also its
    # title, status and the page's message, as for any incident (docs/security.md, "Private incidents").
    private_details: bool = False

    @field_validator("pagerduty_routing_key")
    @classmethod
    def _routing_key_shape(cls, key: str | None) -> str | None:
        # PagerDuty refuses any other length with a 400 (developer-docs, Events API v2 "Trigger events":
        # routing_key, 32 characters): say so now rather than at the first page of an outage.
        if key is not None and len(key.strip()) != 32:
            raise ValueError(f"a PagerDuty routing key (Events API v2 integration key) has 32 characters; this one has "
                             f"{len(key.strip())}. Copy it from the service's Events API v2 integration")
        return key


class TargetSection(_Section):
    url: Annotated[str, StringConstraints(min_length=1)]
    statement_timeout_ms: Annotated[int, Field(gt=0)] = 3000

    @field_validator("url")
    @classmethod
    def _supported_database(cls, url: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            backend = make_url(url).get_backend_name()
        except ArgumentError:
            backend = None
        if backend not in ("postgresql", "mysql", "mariadb", "sqlite"):
            # Never echo the URL: it may carry a password.
            raise ValueError(
                "not a database URL the diagnostics can use; write postgresql+psycopg://user@host:5432/db, "
                "mysql+pymysql://user@host:3306/db or sqlite:///path"
            )
        return url


class WatchdogSection(_Section):
    interval_seconds: Annotated[int, Field(gt=0)] = 30
    usage_alert_percent: Annotated[int, Field(gt=0, le=100)] = 80
    idle_in_transaction_alert_seconds: Annotated[int, Field(gt=0)] = 300
    exhaustion_horizon_minutes: Annotated[int, Field(gt=0)] = 15
    auto_declare: bool = False


class DiagnosticsSection(_Section):
    targets: dict[str, TargetSection] = Field(default_factory=dict)
    allowed_users: list[UserId] = Field(default_factory=list)
    watchdog: WatchdogSection = WatchdogSection()


class PagingSection(_Section):
    pagerduty_webhook_secret: str | None = None  # verifies POST /webhooks/pagerduty (X-PagerDuty-Signature)
    opsgenie_webhook_token: str | None = None  # POST /webhooks/opsgenie: Authorization: Bearer <token>


class StatusUpdateMinutes(_Section):
    sev1: Annotated[int, Field(gt=0)] = 15
    sev2: Annotated[int, Field(gt=0)] = 30
    sev3: Annotated[int, Field(gt=0)] = 60
    sev4: Annotated[int, Field(gt=0)] = 240


class RemindersSection(_Section):
    status_update_minutes: StatusUpdateMinutes = StatusUpdateMinutes()
    followup_after_days: Annotated[int, Field(gt=0)] = 7


class PostmortemSection(_Section):
    timezone: str = "UTC"
    template: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Paris')") from None
        return name


class AlertRuleSection(_Section):
    """One `[[alerts.rules]]`: the first whose every `label = value` holds decides (bot.alerts.rules)."""

    match: dict[str, str]
    declare: bool = False
    incident_severity: Severity = "sev2"
    page: str | None = None  # a team of [teams] (checked in cross_section_problems)

    @field_validator("match")
    @classmethod
    def _some_labels(cls, match: dict[str, str]) -> dict[str, str]:
        from bot.alerts.notification import MAX_LABEL_LENGTH

        if not match:
            raise ValueError("empty; name at least one label = value (all must hold): a rule without one would match every alert")
        if too_long := sorted(name for name, value in match.items() if len(value) > MAX_LABEL_LENGTH or len(name) > MAX_LABEL_LENGTH):
            raise ValueError(f"{_shown(too_long[0])}: longer than the {MAX_LABEL_LENGTH} characters a label name or value "
                             "is kept to, so it could never match")
        return match


class AlertsSection(_Section):
    channel: ChannelId | None = None  # where alert groups are posted; None: slack.announce_channel
    webhook_token: str | None = None  # POST /webhooks/alertmanager: Authorization: Bearer <token>
    rules: list[AlertRuleSection] = Field(default_factory=list)

    @field_validator("webhook_token")
    @classmethod
    def _token_shape(cls, token: str | None) -> str | None:
        # Never echo it. It travels as `Authorization: Bearer <token>`, which carries no whitespace: a token
        # that cannot be sent is refused; one that is merely short is warned about (alerts_warnings).
        if token is not None and (not token or any(c.isspace() or not c.isprintable() for c in token)):
            raise ValueError("use printable characters without spaces, at least 16 (e.g. the output of "
                             "`openssl rand -hex 32`); the sender puts it in an Authorization: Bearer header")
        return token


class FileConfig(_Section):
    """The whole file. Every section is optional; a missing file is the same as an empty one."""

    slack: SlackSection = SlackSection()
    teams: dict[str, TeamSection] = Field(default_factory=dict)
    diagnostics: DiagnosticsSection = DiagnosticsSection()
    paging: PagingSection = PagingSection()
    reminders: RemindersSection = RemindersSection()
    postmortem: PostmortemSection = PostmortemSection()
    alerts: AlertsSection = AlertsSection()


# --- The environment.


@dataclass(frozen=True)
class Environment:
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    database_url: str = DEFAULT_DATABASE_URL
    config_path: str = DEFAULT_CONFIG_PATH
    config_path_given: bool = False
    pagerduty_events_url: str = DEFAULT_PAGERDUTY_EVENTS_URL
    opsgenie_api_url: str = DEFAULT_OPSGENIE_API_URL
    spool_path: str = DEFAULT_SPOOL_PATH  # where captured messages wait while the store is down

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Environment:
        def get(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value or default

        def optional(name: str) -> str | None:
            return env.get(name, "").strip() or None

        return cls(
            slack_bot_token=optional("SLACK_BOT_TOKEN"),
            slack_signing_secret=optional("SLACK_SIGNING_SECRET"),
            slack_app_token=optional("SLACK_APP_TOKEN"),
            slack_api_url=_with_trailing_slash(get("SLACK_API_URL", DEFAULT_SLACK_API_URL)),
            database_url=get("DATABASE_URL", DEFAULT_DATABASE_URL),
            config_path=get("INCIDENT_BOT_CONFIG", DEFAULT_CONFIG_PATH),
            config_path_given=bool(optional("INCIDENT_BOT_CONFIG")),
            pagerduty_events_url=get("PAGERDUTY_EVENTS_URL", DEFAULT_PAGERDUTY_EVENTS_URL),
            opsgenie_api_url=get("OPSGENIE_API_URL", DEFAULT_OPSGENIE_API_URL),
            spool_path=get("INCIDENT_BOT_SPOOL", DEFAULT_SPOOL_PATH),
        )

    def secrets(self) -> list[str]:
        """Values that must never appear in a log line, a Slack message or a postmortem."""
        return [s for s in (self.slack_bot_token, self.slack_signing_secret, self.slack_app_token) if s]


@dataclass(frozen=True)
class Settings:
    """Everything the bot was configured with: passed down from start-up, never re-read."""

    env: Environment
    file: FileConfig
    config_path: Path | None  # None when no file was found at the default path
    warnings: list[str] = field(default_factory=list)
    postmortem_template: PostmortemTemplate | None = None  # the team's template, compiled and tried; None: the default

    def secrets(self) -> list[str]:
        """Every configured secret: kept out of logs, Slack messages and postmortems."""
        from sqlalchemy.engine import make_url

        found = self.env.secrets()
        for team in self.file.teams.values():
            found += [s for s in (team.pagerduty_routing_key, team.opsgenie_api_key) if s]
        found += [s for s in (self.file.paging.pagerduty_webhook_secret, self.file.paging.opsgenie_webhook_token) if s]
        found += [s for s in (self.file.alerts.webhook_token,) if s]
        for url in [self.env.database_url] + [t.url for t in self.file.diagnostics.targets.values()]:
            password = make_url(url).password
            if password:
                found.append(str(password))
        return found


def load_settings(env: Mapping[str, str] | None = None, *, mode: Mode | None = None) -> Settings:
    """Read and validate the environment and the configuration file.

    `mode` says what the process is about to do ("http" or "socket" serving); `None` checks only what
    every command needs. Raises ConfigError listing every problem found.
    """
    environment = Environment.from_mapping(os.environ if env is None else env)
    problems = environment_problems(environment, mode)
    warnings: list[str] = []
    path = Path(environment.config_path)
    file_config = FileConfig()
    config_path: Path | None = path
    if not path.exists() and not environment.config_path_given:
        config_path = None
        warnings.append(
            f"{path}: no configuration file; running with defaults (no announce channel, no teams). "
            "Set INCIDENT_BOT_CONFIG to use another path."
        )
    else:
        try:
            file_config = parse_config_file(path)
            warnings += [f"{path}: {warning}" for warning in alerts_warnings(file_config)]
        except ConfigError as e:
            problems.extend(e.problems)
    template = None
    if file_config.postmortem.template:
        try:
            template = postmortem_template(path, file_config.postmortem.template)
        except ConfigError as e:
            problems.extend(e.problems)
    if problems:
        raise ConfigError(problems)
    return Settings(env=environment, file=file_config, config_path=config_path, warnings=warnings,
                    postmortem_template=template)


def postmortem_template(config_path: Path, template: str) -> PostmortemTemplate:
    """The team's template, compiled and tried on a sample draft now rather than at the first close.
    A relative path is relative to the configuration file."""
    from bot.postmortem.templates import TemplateProblem, load_template

    try:
        return load_template(config_path.parent / Path(template).expanduser())
    except TemplateProblem as problem:
        raise ConfigError([f"{config_path}: postmortem.template: {problem}"]) from None


def environment_problems(env: Environment, mode: Mode | None) -> list[str]:
    problems: list[str] = []
    token = env.slack_bot_token
    if mode is not None and not token:
        problems.append("SLACK_BOT_TOKEN: not set; the bot token (xoxb-…) from your Slack app's OAuth page is required")
    if token and not token.startswith("xoxb-"):
        problems.append("SLACK_BOT_TOKEN: not a bot token; it must start with 'xoxb-'")
    if mode == "http" and not env.slack_signing_secret:
        problems.append(
            "SLACK_SIGNING_SECRET: not set; HTTP mode verifies every request with it "
            "(or run `incident-bot serve --socket-mode` with SLACK_APP_TOKEN)"
        )
    if mode == "socket" and not env.slack_app_token:
        problems.append("SLACK_APP_TOKEN: not set; Socket Mode needs an app-level token (xapp-…)")
    if env.slack_app_token and not env.slack_app_token.startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN: not an app-level token; it must start with 'xapp-'")
    for name, url in (
        ("SLACK_API_URL", env.slack_api_url),
        ("PAGERDUTY_EVENTS_URL", env.pagerduty_events_url),
        ("OPSGENIE_API_URL", env.opsgenie_api_url),
    ):
        if not url.startswith(("http://", "https://")):
            problems.append(f"{name}: {url!r} is not an http(s) URL")
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(env.database_url)
    except ArgumentError:
        problems.append("DATABASE_URL: not a SQLAlchemy URL (e.g. sqlite:///incident-bot.db or postgresql+psycopg://…)")
    return problems


def parse_config_file(path: Path) -> FileConfig:
    """Parse and validate one TOML file; ConfigError names the file and each bad key."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: cannot read the configuration file: it does not exist"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}: cannot read the configuration file: {_reason(e)}"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: not valid TOML: {e}"]) from None
    problems: list[str] = []
    config = FileConfig()
    try:
        config = FileConfig.model_validate(raw)
    except ValidationError as e:
        problems += [_describe(err) for err in e.errors()]
    problems += cross_section_problems(raw)
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return config


def cross_section_problems(raw: Mapping) -> list[str]:
    """Rules that span keys, checked on the raw file so they are reported next to per-key errors:
    every team can be reached somehow, escalation chains name teams that exist and never loop,
    every team key can be stored and make an alert key (bot.paging.keys.team_key_problem), and
    every `[[alerts.rules]]` `page` names a team."""
    from bot.paging.keys import team_key_problem

    teams = raw.get("teams")
    alert_problems = _alert_rule_problems(raw)
    if not isinstance(teams, Mapping):
        return alert_problems
    problems = [f"teams.{_shown(name)}: {problem}" for name in teams if (problem := team_key_problem(name))]
    teams = {name: team for name, team in teams.items() if isinstance(team, Mapping)}
    for name, team in teams.items():
        if not any(team.get(key) for key in ("pagerduty_routing_key", "opsgenie_api_key", "slack_members")):
            problems.append(
                f"teams.{_shown(name)}: no way to reach this team; give it a pagerduty_routing_key, an opsgenie_api_key "
                "or slack_members"
            )
        target = team.get("escalate_to")
        if isinstance(target, str) and (problem := team_key_problem(target)):
            problems.append(f"teams.{_shown(name)}.escalate_to: names no possible team: {problem}")
        elif isinstance(target, str) and target not in teams:
            known = ", ".join(sorted(map(_shown, teams))) or "none"
            problems.append(f"teams.{_shown(name)}.escalate_to: no team named {target!r} (teams: {known})")
        elif isinstance(target, str) and "escalate_after_minutes" not in team:
            problems.append(f"teams.{_shown(name)}.escalate_after_minutes: needed with escalate_to (minutes without an acknowledgement)")
    problems += [f"teams.{_shown(name)}.escalate_to: the escalation chain loops: {chain}" for name, chain in _loops(teams)]
    return problems + alert_problems


def _alert_rule_problems(raw: Mapping) -> list[str]:
    """Every `[[alerts.rules]]` `page` names a team of this file (as the pages it makes are sent to it)."""
    alerts = raw.get("alerts")
    rules = alerts.get("rules") if isinstance(alerts, Mapping) else None
    if not isinstance(rules, list):
        return []
    teams = raw.get("teams")
    names = [name for name in teams if isinstance(teams[name], Mapping)] if isinstance(teams, Mapping) else []
    problems = []
    for index, rule in enumerate(rules):
        page = rule.get("page") if isinstance(rule, Mapping) else None
        if isinstance(page, str) and page not in names:
            known = ", ".join(sorted(map(_shown, names))) or "none"
            where = f"alerts.rules.{index}.page"
            problems.append(f"{where}: no team named {_safe_repr(where, page)} (teams: {known})")
    return problems


def alerts_warnings(config: FileConfig) -> list[str]:
    """What `[alerts]` allows but probably does not mean: said at start and by check-config, never refused."""
    alerts, warnings = config.alerts, []
    if alerts.webhook_token and len(alerts.webhook_token) < 16:
        warnings.append("alerts.webhook_token: shorter than 16 characters, so easy to guess; use e.g. the output of "
                        "`openssl rand -hex 32` (value hidden)")
    if not alerts.webhook_token and (alerts.rules or alerts.channel):
        warnings.append("alerts: no webhook_token, so POST /webhooks/alertmanager refuses every notification and the "
                        "channel and rules are unused")
    if alerts.webhook_token and not (alerts.channel or config.slack.announce_channel):
        warnings.append("alerts.channel: not set, and neither is slack.announce_channel: alert groups are stored and "
                        "rules applied, but nothing is posted in Slack (no Declare incident button)")
    for index, rule in enumerate(alerts.rules):
        if rule.page is not None and not rule.declare:
            # Not refused: a declaration from the group's Declare incident button still pages the rule's team.
            warnings.append(f"alerts.rules.{index}: page = {rule.page!r} with declare = false pages that team only when "
                            "someone presses Declare incident on the alert's message, never when it fires; set "
                            "declare = true to page at once")
        earlier = next((i for i, other in enumerate(alerts.rules[:index]) if other.match.items() <= rule.match.items()), None)
        if earlier is not None:
            warnings.append(f"alerts.rules.{index}: never matches: alerts.rules.{earlier} comes first and matches every "
                            "alert this one would (the first match wins)")
    return warnings


def _shown(name: str) -> str:
    """A team key as a problem line shows it: control characters escaped (one line per problem), at
    most 20 characters and "…", and an empty key as ""."""
    escaped = "".join(c.encode("unicode_escape").decode("ascii") if ord(c) < 32 or 127 <= ord(c) < 160 else c
                      for c in name)
    return '""' if not name else escaped if len(escaped) <= 20 else escaped[:20] + "…"


def _loops(teams: Mapping[str, Mapping]) -> list[tuple[str, str]]:
    """Each escalation loop once, reported at its alphabetically first team."""
    found: dict[frozenset[str], tuple[str, str]] = {}
    for start in sorted(teams):
        path, team = [start], teams[start].get("escalate_to")
        while isinstance(team, str) and team in teams and team not in path:
            path.append(team)
            team = teams[team].get("escalate_to")
        if team in path:
            cycle = path[path.index(team):]
            first = min(cycle)
            ordered = cycle[cycle.index(first):] + cycle[: cycle.index(first)]
            found.setdefault(frozenset(cycle), (first, " → ".join([*ordered, first])))
    return list(found.values())


_TYPE_NAMES = {
    "int": "an integer",
    "string": "a string",
    "bool": "true or false",
    "list": "a list",
    "dict": "a table",
    "float": "a number",
    "model": "a table",
}


def _describe(error: Mapping) -> str:
    location = ".".join(str(part) for part in error["loc"] if not str(part).startswith(("function-", "constrained-")))
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{location}: unknown key"
    if kind.endswith("_type"):
        expected = _TYPE_NAMES.get(kind.removesuffix("_type"), kind.removesuffix("_type"))
        return f"{location}: expected {expected}, got {type(error['input']).__name__} {_safe_repr(location, error['input'])}"
    if kind == "string_pattern_mismatch":
        return f"{location}: {_safe_repr(location, error['input'])} is not valid: {_pattern_hint(location)}"
    if kind == "literal_error":
        return f"{location}: {error['msg'].lower()}"
    if kind == "value_error":
        return f"{location}: {error['msg'].removeprefix('Value error, ')}"
    return f"{location}: {error['msg']}"


def _pattern_hint(location: str) -> str:
    if location.endswith(("announce_channel", "alerts.channel")):
        return "use the channel's id (C0123ABCD, from the channel's details), not its name"
    if location.endswith("channel_prefix"):
        return "lowercase letters, digits, '-' or '_', at most 20 characters"
    return "expected a Slack user id such as U0123ABCD"


_SECRET_WORDS = ("key", "secret", "token", "password", "url")


def _safe_repr(location: str, value: object) -> str:
    if any(word in location.lower() for word in _SECRET_WORDS):
        return "(value hidden)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)


def _with_trailing_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
