"""What every diagnostics driver shares: the result types, the errors, the driver protocol, query-text
normalization, and the connection-count summary that PostgreSQL and MySQL both report.

A driver opens one fresh connection to a database that may already be in trouble, runs a fixed,
allowlisted check on it and returns plain data. Everything here is backend-neutral; the SQL lives in the
backend modules.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy.engine import URL

CHECKS: tuple[str, ...] = ("connections", "idle-in-tx", "long-queries", "blocking", "settings")
APPLICATION_NAME = "incident-bot-diagnostics"
QUERY_TEXT_LIMIT = 200
TOP = 5

Cell = str | int | float | None
Figure = int | float | str | None


@dataclass(frozen=True)
class Table:
    title: str
    columns: list[str]
    rows: list[list[Cell]]


@dataclass(frozen=True)
class CheckResult:
    check: str
    headline: str  # the headline figure first, e.g. "412 of 497 usable connections in use (82.9%)"
    figures: dict[str, Figure]  # machine-readable, for the postmortem and the watchdog
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. a privilege that hides other users' queries


class TargetError(Exception):
    """A check could not be done. `reason` is the sentence shown to people: it never holds credentials."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TargetUnreachable(TargetError):
    """No answer in time, refused at TCP level, or the host name did not resolve."""


class TargetRefused(TargetError):
    """The server answered but turned the connection away because it is full: that is itself the finding."""


class CheckTimedOut(TargetError):
    """The server cancelled the check's statement at the statement (or lock) timeout."""


class UnsupportedCheck(TargetError):
    """The check does not exist on this backend."""


class Driver(Protocol):
    backend: str  # "postgresql" | "mysql" | "sqlite"
    checks: tuple[str, ...]  # the subset of CHECKS this backend supports

    def connect(self, url: URL, *, connect_timeout: float, statement_timeout_ms: int) -> Any:
        """One new DBAPI connection, in a read-only transaction, with a server-side statement timeout."""
        ...

    def run(self, connection: Any, check: str) -> CheckResult:
        """Run one check; raises UnsupportedCheck, CheckTimedOut or TargetError."""
        ...

    def close(self, connection: Any) -> None:
        """Roll back and close; never raises."""
        ...


# --- safe descriptions of a target -------------------------------------------------------------------


def describe_target(url: URL, default_port: int) -> str:
    """host:port/dbname: enough to tell targets apart, never the user, password or query string."""
    return f"{url.host or 'localhost'}:{url.port or default_port}/{url.database or ''}"


def scrub(message: object, secret: str | None) -> str:
    """The first line of a driver's error message, with the password blanked should it ever appear."""
    lines = str(message).strip().splitlines()
    text = lines[0].strip() if lines else "no details"
    if secret:
        text = text.replace(secret, "***")
    return text


def check_timeouts(connect_timeout: float, statement_timeout_ms: int) -> None:
    """A zero or negative timeout would mean "wait forever" to the drivers: never allowed here."""
    if not connect_timeout > 0:
        raise ValueError("connect_timeout must be positive")
    if statement_timeout_ms < 1:
        raise ValueError("statement_timeout_ms must be at least 1")


def unsupported(backend: str, check: str, supported: tuple[str, ...]) -> UnsupportedCheck:
    listed = ", ".join(supported) if supported else "none"
    return UnsupportedCheck(f"'{check}' is not available on {backend} (available: {listed})")


# --- query text --------------------------------------------------------------------------------------

# One pass over the text: the first alternative that matches at a position wins, so quotes inside
# comments or identifiers never start a string. Unterminated literals (query texts the server cut
# short) run to the end of the text, so a truncated literal is hidden too.
_TOKENS = r"""
    (?P<line_comment>--[^\n]*)
  | (?P<block_comment>/\*.*?(?:\*/|\Z))
  | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*|)\$.*?(?:\$(?P=tag)\$|\Z))
  | (?P<escape_string>(?<![\w$])[Ee]'(?:[^'\\]|\\.|'')*(?:'|\Z))
  | (?P<string>(?:(?<![\w$])(?:[NnXxBb]|[Uu]&))?{string_body})
  | (?P<double_quoted>"(?:[^"]|"")*(?:"|\Z))
  | (?P<backquoted>`(?:[^`]|``)*(?:`|\Z))
  | (?P<parameter>\$\d+)
  | (?P<number>(?<![\w$.])(?:0[xX][0-9A-Fa-f]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)(?![\w.]))
"""
_STANDARD_STRING = r"'(?:[^']|'')*(?:'|\Z)"
_MYSQL_STRING = r"'(?:[^'\\]|\\.|'')*(?:'|\Z)"  # MySQL escapes with backslashes by default
_PATTERNS = {
    "standard": re.compile(_TOKENS.replace("{string_body}", _STANDARD_STRING), re.VERBOSE | re.DOTALL),
    "mysql": re.compile(_TOKENS.replace("{string_body}", _MYSQL_STRING), re.VERBOSE | re.DOTALL),
}
_IN_LIST = re.compile(r"\b(IN)\s*\(\s*(?:\?|\$\d+)(?:\s*,\s*(?:\?|\$\d+))*\s*\)", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")


def normalize_sql(text: str, limit: int = QUERY_TEXT_LIMIT, *,
                  dialect: Literal["standard", "mysql"] = "standard") -> str:
    """Query text safe to show in Slack: literals become ?, IN lists collapse, whitespace folds.

    Literals are what hold customers' data and secrets; the shape of the query is what finds the code.
    The "mysql" dialect also reads backslash escapes and "double-quoted" strings as MySQL does.
    """

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup
        if kind == "line_comment":
            return " "
        if kind == "double_quoted" and dialect == "mysql":
            return "?"
        if kind in ("dollar", "escape_string", "string", "number"):
            return "?"
        return match.group(0)

    normalized = _PATTERNS[dialect].sub(replace, text)
    normalized = _IN_LIST.sub(lambda m: f"{m.group(1)} (?)", normalized)
    normalized = _WHITESPACE.sub(" ", normalized).strip()
    if len(normalized) > limit:
        normalized = normalized[: max(limit - 1, 0)].rstrip() + "…"
    return normalized


# --- shared presentation -------------------------------------------------------------------------------


def duration_text(seconds: float | None) -> str:
    """45s, 5m 12s, 2h 03m: durations as people read them in a headline."""
    if seconds is None:
        return "unknown"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if seconds < 10 and seconds != whole else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"




def seconds(value: Any, digits: int = 1) -> float | None:
    """A duration from the server (Decimal, float, int or NULL) as float seconds."""
    return None if value is None else round(float(value), digits)


def settings_value(raw: Any) -> Figure:
    """A server setting as a figure: numbers as numbers, everything else as the server shows it."""
    if raw is None:
        return None
    text = str(raw)
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


@dataclass(frozen=True)
class Session:
    """One client connection as the connections check sees it (never the diagnostics connection)."""

    state: str  # "active", "idle", "idle in transaction", … as the backend names it
    user: str | None
    application: str | None  # None where the backend has no such thing (MySQL)
    client: str | None
    idle_in_transaction_seconds: int | None  # transaction age, only for sessions idle in a transaction


@dataclass(frozen=True)
class Capacity:
    in_use: int  # as the server counts against max_connections, without the diagnostics connection
    max_connections: int
    reserved: int

    @property
    def usable(self) -> int:
        return self.max_connections - self.reserved

    @property
    def usage_percent(self) -> float | None:
        return round(self.in_use / self.usable * 100, 1) if self.usable > 0 else None


def connections_result(capacity: Capacity, sessions: list[Session], *, state_order: tuple[str, ...],
                       applications: bool, notes: list[str]) -> CheckResult:
    """The connections check for any server backend: headline, figures and the top-N tables."""
    idle_tx = [s for s in sessions if s.idle_in_transaction_seconds is not None]
    oldest = max((s.idle_in_transaction_seconds or 0 for s in idle_tx), default=None)
    states = Counter(s.state for s in sessions)
    figures: dict[str, Figure] = {
        "in_use": capacity.in_use,
        "max_connections": capacity.max_connections,
        "reserved": capacity.reserved,
        "usable": capacity.usable,
        "usage_percent": capacity.usage_percent,
        "idle_in_transaction": len(idle_tx),
        "oldest_idle_in_transaction_seconds": oldest,
        "by_state": by_state_text(states, state_order),
    }
    tables = [Table("By state", ["state", "sessions"], [[name, count] for name, count in
                                                          ordered_states(states, state_order)])]
    if applications:
        tables.append(top_table("Top applications", "application", sessions, lambda s: s.application))
    tables.append(top_table("Top users", "user", sessions, lambda s: s.user))
    tables.append(top_table("Top client addresses", "client", sessions, lambda s: s.client))
    return CheckResult("connections", connections_headline(capacity, len(idle_tx), oldest), figures,
                       tables, notes)


def connections_headline(capacity: Capacity, idle_tx: int, oldest: int | None) -> str:
    percent = "n/a" if capacity.usage_percent is None else f"{capacity.usage_percent}%"
    headline = f"{capacity.in_use} of {capacity.usable} usable connections in use ({percent})"
    if idle_tx:
        headline += f"; {idle_tx} idle in a transaction (oldest {duration_text(oldest)})"
    return headline


def ordered_states(states: Counter[str], order: tuple[str, ...]) -> list[tuple[str, int]]:
    """Known states in their natural order, then any others by count."""
    known = [(name, states[name]) for name in order if states[name]]
    others = sorted(((n, c) for n, c in states.items() if n not in order), key=lambda i: (-i[1], i[0]))
    return known + others


def by_state_text(states: Counter[str], order: tuple[str, ...]) -> str:
    return ", ".join(f"{name} {count}" for name, count in ordered_states(states, order)) or "none"


def top_table(title: str, label: str, sessions: list[Session], key: Any) -> Table:
    """The TOP groups by session count, each with how many of its sessions sit idle in a transaction."""
    counts: Counter[str] = Counter()
    idle_tx: Counter[str] = Counter()
    for session in sessions:
        name = key(session)
        name = "(unknown)" if name is None else (name or "(none)")
        counts[name] += 1
        if session.idle_in_transaction_seconds is not None:
            idle_tx[name] += 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP]
    return Table(title, [label, "sessions", "idle in transaction"],
                 [[name, count, idle_tx[name]] for name, count in ranked])
