"""`incident-bot resolve` and `incident-bot close`: ending an incident from the operator's shell, for when
`/incident` cannot be used (its channel was archived, Slack is down, nobody is left in the channel).

The change is made by the same domain service as the slash command, as `OPERATOR` ("the operator
(incident-bot CLI)" in the timeline, the channel and the postmortem), exactly once: the incident's row
is locked while it changes, so a second run (or one racing `/incident resolve`) finds it done and says
so. The consequences are the slash command's:
- pages are resolved at their providers, and their escalation jobs removed from the job store in the
  bot's database (a running `serve` reads its jobs from there, so it never fires them; were one already
  picked up, its claim on the page fails, the page being resolved);
- the status-update reminder is removed the same way;
- `close` requests a postmortem version in the same transaction, and drafts it.

Slack's side, with SLACK_BOT_TOKEN: shown the way `serve` shows it (the channel, or its announcement
thread when the channel is archived; the announcement; the postmortem uploaded). Without a token, or
when Slack fails, the change stands: its timeline entry stays marked as not shown, which `serve` shows at
its next start (`Runtime._resume`: changes of the last day never shown), and a postmortem drafted but
not uploaded is uploaded then too. The page messages in Slack are not updated later.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TextIO

from slack_bolt.error import BoltError
from slack_sdk.errors import SlackApiError, SlackRequestError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.clock import SystemClock
from bot.config import Settings
from bot.incidents import commands as c
from bot.incidents.service import AlreadyDone, Changed, IncidentService, Unchanged
from bot.incidents.values import OPERATOR, OPERATOR_NAME, Incident, Status
from bot.paging.events import Doer
from bot.paging.providers import Transport
from bot.paging.service import PagingService
from bot.people import People
from bot.postmortem.service import PostmortemService, PostmortemView
from bot.reminders import StatusReminders
from bot.scheduling import Scheduler
from bot.slack_markup import Names, references, to_plain
from bot.wording import counted
from handlers import paging, postmortems
from handlers.app import Runtime, build_runtime, paging_providers
from handlers.mrkdwn import escape
from handlers.publisher import StepFailed
from handlers.slack_client import make_web_client, slack_error
from storage.database import make_engine, make_session_factory, safe_url

SLACK_FAILURES = (SlackApiError, SlackRequestError, StepFailed, OSError)
USAGE = {
    "resolve": "incident-bot resolve INCIDENT [SUMMARY]   (INCIDENT: its number, 42, or its channel name)",
    "close": "incident-bot close INCIDENT   (INCIDENT: its number, 42, or its channel name)",
}


@dataclass
class _Domain:
    """What ending an incident needs, whether or not Slack can be told."""

    incidents: IncidentService
    paging: PagingService
    postmortems: PostmortemService


def end(settings: Settings, reference: str, command: c.Resolve | c.Close, *, out: TextIO, err: TextIO) -> int:
    """Resolve or close the incident `reference` (a number, `#42`, or a channel name). Prints what was
    done, and what Slack was not shown, on `out`; problems on `err`. Returns the exit status: 0 when the
    incident is now resolved or closed (by this run or before it), 1 when nothing could be done."""
    name = "close" if isinstance(command, c.Close) else "resolve"
    where = safe_url(settings.env.database_url)
    runtime, slack_problem = _connect(settings)
    engine = runtime.engine if runtime else make_engine(settings.env.database_url)
    transport = runtime.transport if runtime else Transport()
    domain = _Domain(runtime.services.incidents, runtime.services.paging, runtime.services.postmortems) if runtime \
        else _offline(settings, engine, transport)
    try:
        incident = domain.incidents.find(reference) if reference.strip().lstrip("#") else None
        if incident is None:
            print(f"incident-bot: no incident {reference!r} in {where}.\nUsage: {USAGE[name]}", file=err)
            return 1
        outcome = domain.incidents.apply(incident.id, command, OPERATOR, f"cli:{name}:{uuid.uuid4().hex}")
        if isinstance(outcome, Unchanged | AlreadyDone):
            print(_already(outcome.incident, name, domain), file=out)
            return 0
        _tell = _Teller(out, runtime, slack_problem)
        _tell.line(_done(outcome, name, People(make_session_factory(engine), SystemClock())))
        _end_paging(domain, runtime, outcome.incident, _tell)
        _tell.slack("the change", lambda: runtime.services.publisher.publish(outcome) if runtime else None,
                    later="`serve` shows it at its next start (it posts changes of the last day that were never shown)")
        if isinstance(command, c.Close):
            _postmortem(domain, runtime, outcome, _tell)
        shown = domain.incidents.get(incident.id)
        if runtime and shown.channel_archived_at is not None and shown.private:
            _tell.line(f"Slack: its channel #{shown.channel_name} is archived and the incident is private, so Slack was "
                       "not told (a private incident is shown nowhere but its channel, not even the announcement thread).")
        elif runtime and shown.channel_archived_at is not None and not _tell.failed:
            _tell.line(f"Slack: its channel #{shown.channel_name} is archived, so this went to the incident's "
                       "announcement thread.")
        if _tell.failed and slack_problem is None:
            print("incident-bot: Slack did not show everything (see above); the change itself is saved.", file=err)
        return 0
    except SQLAlchemyError as error:
        print(f"incident-bot: the store at {where} could not be used ({type(error).__name__}); is DATABASE_URL right, "
              "and has `incident-bot migrate` run?", file=err)
        return 1
    finally:
        if runtime is not None:
            runtime.close()
        else:
            transport.close()
            engine.dispose()


def parse(name: str, summary_words: list[str]) -> c.Resolve | c.Close:
    """The command, checked as `/incident` checks it (the summary's length). The summary is plain shell
    text: escaped for Slack, as slash-command text arrives (`&` as `&amp;`). Raises c.UsageError with
    the CLI's own form."""
    if name == "close":
        return c.Close()
    try:
        parsed = c.parse(f"resolve {escape(' '.join(summary_words))}")
    except c.UsageError as error:
        raise c.UsageError(error.message, USAGE["resolve"]) from None
    assert isinstance(parsed, c.Resolve)
    return parsed


class _Teller:
    """Prints what was done, and keeps count of what Slack was not shown."""

    def __init__(self, out: TextIO, runtime: Runtime | None, slack_problem: str | None) -> None:
        self._out = out
        self._runtime = runtime
        self._problem = slack_problem
        self.failed = False

    def line(self, text: str) -> None:
        print(text, file=self._out)

    def slack(self, what: str, show: Callable[[], object], *, later: str) -> bool:
        """Show something in Slack; say so when it could not be, and what happens to it."""
        if self._runtime is None:
            self.failed = True
            self.line(f"Slack: {what} is not shown ({self._problem}); {later}.")
            return False
        try:
            show()
            return True
        except SLACK_FAILURES as error:
            self.failed = True
            self.line(f"Slack: {what} is not shown ({_reason(error)}); {later}.")
            return False


def _connect(settings: Settings) -> tuple[Runtime | None, str | None]:
    """The bot's services with Slack, or None and why Slack cannot be told."""
    env = settings.env
    if not env.slack_bot_token:
        return None, "SLACK_BOT_TOKEN is not set"
    try:
        make_web_client(env.slack_bot_token, env.slack_api_url).auth_test()
        return build_runtime(settings, run_migrations=False, serving=False), None
    except (SlackApiError, SlackRequestError, BoltError, OSError) as error:
        return None, f"Slack did not answer the bot token: {_reason(error)}"


def _offline(settings: Settings, engine: Engine, transport: Transport) -> _Domain:
    """The domain services alone, as build_runtime wires them, for when Slack cannot be told."""
    clock = SystemClock()
    sessions = make_session_factory(engine)
    scheduler = Scheduler(engine)  # never started: cancelling removes the job from the shared store
    reminders = StatusReminders(sessions, clock, scheduler, settings.file.reminders.status_update_minutes)
    return _Domain(
        incidents=IncidentService(sessions, clock, after_change=reminders.follow),
        paging=PagingService(sessions, clock, dict(settings.file.teams), paging_providers(settings, transport), scheduler,
                             lambda incident: None),
        postmortems=PostmortemService.from_settings(settings, sessions, clock),
    )


def _done(change: Changed, name: str, people: People) -> str:
    """What the operator reads in their shell: the title as typed, not as Slack stored it (`&amp;`, `<@U…>`):
    people it mentions by the names the store knows (bot.slack_markup.to_plain)."""
    incident = change.incident
    title = to_plain(incident.title, Names(users=people.names(references(incident.title).users)))
    text = f"Incident {incident.number} (“{title}”) {'closed' if name == 'close' else 'resolved'} by {OPERATOR_NAME}."
    if name == "close" and change.before != Status.RESOLVED.value:
        text += f" It was {_label(change.before)}, not resolved: closing resolves it too, as `/incident close` does."
    return text


def _already(incident: Incident, name: str, domain: _Domain) -> str:
    """A second run: nothing changed, and where things stand."""
    number = incident.number
    if incident.status is Status.CLOSED:
        text = f"Incident {number} is already closed (since {_when(incident.closed_at)}); nothing changed."
        latest = domain.postmortems.latest(incident.id)
        if latest is not None:
            text += f" {_postmortem_where(latest, number)}"
        return text
    assert name == "resolve" and incident.status is Status.RESOLVED
    return (f"Incident {number} is already resolved (since {_when(incident.resolved_at)}); nothing changed. "
            f"`incident-bot close {number}` closes it.")


def _end_paging(domain: _Domain, runtime: Runtime | None, incident: Incident, tell: _Teller) -> None:
    """What `/incident resolve` does to pages (handlers.paging.resolve_pages), each Slack step on its own.
    The shell waits for the providers' answers (each within its own retry budget) to say how it went."""
    resolved = domain.paging.resolve_all(incident, Doer(OPERATOR_NAME, "the operator's shell"))
    if resolved.pages:
        count = len(resolved.pages)
        teams = ", ".join(sorted({domain.paging.display_name(p.team) for p in resolved.pages}))
        tell.line(f"Paging: {counted(count, 'open page')} resolved ({teams}); "
                  "their escalations are cancelled.")
    errors = {f"{told.provider} ({domain.paging.display_name(domain.paging.get(told.page_id).team)})": told.error
              for told in (future.result() for future in resolved.told)
              if told.error is not None and told.page_id is not None}
    for provider, error in errors.items():
        tell.line(f"Paging: {provider} could not be told to close its alert ({error}): close it there by hand.")
    tell.line("Status-update reminders for it are stopped.")
    if runtime is None:
        return
    services = runtime.services
    for page in domain.paging.pages(incident.id):
        tell.slack(f"the page message to {domain.paging.display_name(page.team)}", partial(paging.refresh, services, page),
                   later="it keeps its buttons; pressing them says the page is closed")
    if errors:
        text = (":warning: The incident is resolved, but these could not be told to close their alerts: "
                + "; ".join(f"{name}: {error}" for name, error in errors.items()) + ". Close them by hand.")
        tell.slack("the pager errors", lambda: services.publisher.post(services.incidents.get(incident.id), text),
                   later="they are listed above")  # as stored now: refreshing may have found the channel archived


def _postmortem(domain: _Domain, runtime: Runtime | None, change: Changed, tell: _Teller) -> None:
    number = change.incident.number
    postmortem_id = int(change.data["postmortem_id"])
    view = domain.postmortems.draft(postmortem_id)
    if runtime is not None:
        tell.slack(f"the postmortem (version {view.version})", lambda: postmortems.draft_and_post(runtime.services, postmortem_id),
                   later="`serve` posts it at its next start")
        view = domain.postmortems.get(postmortem_id)
    tell.line(_postmortem_where(view, number))


def _postmortem_where(view: PostmortemView, number: int) -> str:
    printed = f"`incident-bot postmortem {number}` prints it"
    if view.permalink:
        return f"Postmortem: version {view.version} drafted and posted: {view.permalink} ({printed})."
    if view.drafted:
        return f"Postmortem: version {view.version} drafted, not posted in Slack yet; {printed}."
    return f"Postmortem: version {view.version} requested; `serve` drafts it at its next start."


def _reason(error: BaseException) -> str:
    if isinstance(error, StepFailed):
        return f"{error.step} failed: {error.said}"
    if isinstance(error, SlackApiError):
        return f"Slack said `{slack_error(error)}`"
    if isinstance(error, BoltError):
        return str(error)
    return f"Slack could not be reached ({type(error).__name__})"


def _when(moment: object) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment is not None else "an unknown time"


def _label(status: str | None) -> str:
    try:
        return Status(str(status)).label
    except ValueError:
        return "open"
