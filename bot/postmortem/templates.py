"""Postmortem templates: the default one shipped with the package, or a team's own Jinja2 file.

A team's template is compiled and tried against a sample draft when the configuration is read, so a
broken one is reported by `check-config` (and stops `serve` from starting), never discovered at close.
Templates run sandboxed: they see the draft's values, not the bot. Undefined names are errors, not
silently empty text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import (
    Environment,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
)
from jinja2.sandbox import SandboxedEnvironment

from bot.charts.incident import Reading
from bot.followups import FollowupView
from bot.incidents.values import EntryKind, Incident, Role, Severity, Status
from bot.paging.service import PageView
from bot.postmortem.draft import (
    TO_BE_WRITTEN,
    AlertRecord,
    Draft,
    IncidentRecord,
    RoleSpell,
    build,
)
from bot.timeline import TimelineItem

DEFAULT_TEMPLATE = "postmortem.md.j2"


class TemplateProblem(Exception):
    """A template that cannot be used; the message says where and why, in one line."""


@dataclass(frozen=True)
class PostmortemTemplate:
    template: Template
    source: str | None  # the team's file, or None for the default

    def render(self, draft: Draft) -> str:
        try:
            text = self.template.render(draft=draft, todo=TO_BE_WRITTEN)
        except TemplateError as error:
            raise TemplateProblem(_describe(error, self.source)) from error
        return text if text.endswith("\n") else text + "\n"

    def stream(self, draft: Draft) -> Iterator[str]:
        """render(), piece by piece as the template produces them (Jinja2's generate()): a streamed
        draft's timeline is read as it is laid out. Raises TemplateProblem as render() does, when the
        failing piece is reached."""
        last = ""
        try:
            # Jinja2's pieces joined 100 at a time (TemplateStream's buffering, in C): a 10,000-line draft
            # is about 90,000 pieces, and each costs its reader a loop turn.
            pieces = self.template.stream(draft=draft, todo=TO_BE_WRITTEN)
            pieces.enable_buffering(100)
            for piece in pieces:
                if piece:
                    last = piece
                    yield piece
        except TemplateError as error:
            raise TemplateProblem(_describe(error, self.source)) from error
        if not last.endswith("\n"):
            yield "\n"


def _environment(kind: type[Environment] = SandboxedEnvironment) -> Environment:
    """Sandboxed by default, for a team's template: it sees the draft's values and cannot reach into the bot."""
    return kind(undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def default_template() -> PostmortemTemplate:
    """The shipped template is part of the bot's code: it runs unsandboxed (the sandbox's checks on
    every attribute are three quarters of rendering a 10,000-entry draft)."""
    source = resources.files("bot.postmortem").joinpath("templates", DEFAULT_TEMPLATE).read_text(encoding="utf-8")
    return PostmortemTemplate(_environment(Environment).from_string(source), None)


def load_template(path: Path) -> PostmortemTemplate:
    """Compile a team's template and render a sample draft with it; TemplateProblem says what is wrong."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TemplateProblem(f"cannot read the template {path}: {getattr(error, 'strerror', None) or error}") from None
    try:
        template = PostmortemTemplate(_environment().from_string(source), str(path))
    except TemplateSyntaxError as error:
        raise TemplateProblem(_describe(error, str(path))) from None
    template.render(sample_draft())  # raises TemplateProblem for undefined names, bad filters on real values…
    return template


def template_for(path: Path | None) -> PostmortemTemplate:
    return load_template(path) if path is not None else default_template()


def _describe(error: TemplateError, source: str | None) -> str:
    where = source or "the default template"
    line = getattr(error, "lineno", None) or _template_line(error)
    return f"{where}{f', line {line}' if line else ''}: {error.message or type(error).__name__}"


def _template_line(error: BaseException) -> int | None:
    """The template line a render-time error came from: Jinja2 rewrites the traceback so that frames
    of the template carry its own line numbers."""
    line, trace = None, error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def sample_draft() -> Draft:
    """A draft with one of everything, for trying templates before any incident needs them."""
    start = datetime(2023, 11, 12, 8, 15, tzinfo=UTC)

    def t(minutes: int) -> datetime:
        return start + timedelta(minutes=minutes)

    incident = Incident(
        id=1, number=1, title="Sample", description="A sample", severity=Severity.SEV2, status=Status.CLOSED,
        reporter_id="U0ALICE", declared_at=start, updated_at=t(150), resolved_at=t(150), closed_at=t(160),
        resolution_summary="Restarted", channel_id="C1", channel_name="inc-sample", roles={Role.COMMANDER: "U0ALICE"},
    )
    kinds = [EntryKind.DECLARED, EntryKind.DETECTION, EntryKind.MESSAGE, EntryKind.HYPOTHESIS, EntryKind.MISLEADING,
             EntryKind.ESCALATION, EntryKind.PAGED, EntryKind.PAGE_ACKNOWLEDGED, EntryKind.DIAGNOSTIC,
             EntryKind.SEVERITY_CHANGED, EntryKind.STATUS_CHANGED, EntryKind.RESOLUTION, EntryKind.RESOLVED,
             EntryKind.FOLLOWUP, EntryKind.CLOSED]
    data = {"from": "sev3", "to": "sev2", "team": "db", "check": "connections", "target": "primary", "outcome": "ok"}
    items = [TimelineItem(i, kind, t(i * 10), "U0ALICE", "text", data, key_event=i == 1) for i, kind in enumerate(kinds)]
    record = IncidentRecord(
        incident=incident, items=items,
        roles=[RoleSpell(Role.COMMANDER, "U0ALICE", start, None)],
        pages=[PageView(1, 1, "db", "", "k", "acknowledged", "U0ALICE", t(60), None, acknowledged_at=t(65), acknowledged_by="U0BOB")],
        alerts=[AlertRecord("primary", t(-5), t(100), ["connections at 95%"])],
        followups=[FollowupView(1, 1, "Fix the leak", "U0BOB", "U0ALICE", t(155)), FollowupView(2, 1, "Review", None, "U0ALICE", t(156), t(157), "U0ALICE")],
        names={"U0ALICE": "Alice", "U0BOB": "Bob"}, team_names={"db": "Database team"},
        # One target with a chart, one the watchdog had no samples of, one it does not sample.
        samples={"primary": [Reading(t(m), 20 + m // 2, 97, m // 4) for m in range(-10, 160, 5)]},
        targets={"primary": True, "replica": True, "local": False},
    )
    return build(record, ZoneInfo("Europe/Paris"), version=1, drafted_at=t(170))
