"""`incident-bot demo`: a whole incident on this machine, with no Slack workspace and no credentials.

The real app is served over real HTTP on loopback and driven with signed Slack requests; the project's
Slack simulator plays the workspace; the store is a SQLite file in a temporary folder. The conversation
is printed as it unfolds. Exits non-zero if any step fails.
"""

from __future__ import annotations

import html
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bot.config import load_settings
from handlers.app import Runtime, build_runtime
from handlers.http import BotWsgiApp, HttpServer
from simulators.slack import SlackSimulator
from simulators.slack_requests import SlackRequests

SIGNING_SECRET = "demo-signing-secret"
ANNOUNCE = "C0INCIDENTS"
PEOPLE = {"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol"}


@dataclass(frozen=True)
class Step:
    who: str
    text: str  # "/incident …" is a command; anything else is said in the incident channel
    narration: str = ""
    pushpin_by: str | None = None  # someone marks this message a key event


# Follows the outage in the example postmortem: a deployment leaks database connections.
STORY = [
    Step("U0ALICE", "/incident declare sev2 Checkout errors and slow pages", "09:15 — alerts on latency; alice, on call, declares."),
    Step("U0ALICE", "p99 on checkout is 8 s and 5xx are at 12%. The DB servers look busy.", "The channel starts talking; the bot records it."),
    Step("U0ALICE", "/incident update Latency up on the web tier, 5xx at 12%. Looking at the database servers."),
    Step("U0BOB", "DB CPU is only 40%, but I'm tuning the buffers anyway."),
    Step("U0BOB", "/incident note hypothesis Database performance degradation under load?"),
    Step("U0CAROL", "Could it be the network between web and DB?"),
    Step("U0ALICE", "/incident sev sev1", "Errors keep climbing: it is a SEV1 now."),
    Step("U0BOB", "/incident note misleading Buffer tuning and the network checks changed nothing.", "An hour of misleading paths, written down as such."),
    Step("U0ALICE", "/incident role scribe <@U0CAROL|carol>"),
    Step("U0ALICE", "/incident role commander <@U0BOB|bob>", "bob, from the database team, takes command."),
    Step("U0BOB", "Connections: 498 of 500 in use, most idle in transaction, all from app v4512!", "The leak is found.", pushpin_by="U0ALICE"),
    Step("U0BOB", "/incident update The pool is exhausted: connections leaked since deploy 4512. Rolling it back."),
    Step("U0BOB", "/incident status identified"),
    Step("U0BOB", "/incident status monitoring", "Rolled back; watching the pool drain."),
    Step("U0BOB", "/incident resolve Rolled back deploy 4512; connections back to normal.", "Errors are gone: resolved."),
    Step("U0BOB", "/incident close", "The incident is over."),
]


def run_demo(out: TextIO = sys.stdout) -> int:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="incident-bot-demo-"))
    failures: list[str] = []
    postmortem: Path | None = None
    with SlackSimulator() as slack:
        for user_id, name in PEOPLE.items():
            slack.add_user(user_id, name, real_name=name.capitalize())
        slack.add_channel("incidents", channel_id=ANNOUNCE, members=PEOPLE)
        slack.add_channel("general", channel_id="C0GENERAL", members=PEOPLE)
        runtime = _start_runtime(workdir, slack)
        server = HttpServer(BotWsgiApp(runtime), host="127.0.0.1", port=0, threads=4).start()
        requests = SlackRequests(server.url, SIGNING_SECRET, response_url=slack.response_url())
        show = _Printer(out, slack)
        out.write(f"incident-bot demo: the app at {server.url}, Slack simulated at {slack.url}\n\n")
        try:
            for number, step in enumerate(STORY, start=1):
                failures += _play(step, number, runtime, slack, requests, show)
            _print_timeline(out, runtime)
            postmortem = _save_postmortem(workdir, runtime)
            if postmortem is None:
                failures.append("no postmortem was drafted at close")
        finally:
            server.stop()
            requests.close()
            runtime.close()
    seconds = time.monotonic() - started
    out.write(f"\nThe store of this run: {workdir / 'incident-bot.db'}\n")
    if postmortem is not None:
        out.write(f"The drafted postmortem: {postmortem}\n")
    if failures:
        out.write(f"\n{len(failures)} step(s) failed in {seconds:.1f} s:\n" + "".join(f"- {f}\n" for f in failures))
        return 1
    out.write(f"Every step worked, in {seconds:.1f} s.\n")
    return 0


def _start_runtime(workdir: Path, slack: SlackSimulator) -> Runtime:
    config = workdir / "incident-bot.toml"
    config.write_text(f'[slack]\nannounce_channel = "{ANNOUNCE}"\nchannel_prefix = "inc"\n')
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            "DATABASE_URL": f"sqlite:///{workdir / 'incident-bot.db'}",
            "INCIDENT_BOT_CONFIG": str(config),
        },
        mode="http",
    )
    return build_runtime(settings)


def _play(step: Step, number: int, runtime: Runtime, slack: SlackSimulator, requests: SlackRequests, show: _Printer) -> list[str]:
    incidents = runtime.services.incidents.list_open()
    channel = (incidents[-1].channel_id if incidents and step is not STORY[0] else None) or "C0GENERAL"
    if step.narration:
        show.narrate(f"[{number}/{len(STORY)}] {step.narration}")
    show.typed(step.who, step.text)
    if not step.text.startswith("/incident "):
        return _say(step, channel, requests)
    sent = requests.command(step.text.removeprefix("/incident "), user_id=step.who, channel_id=channel)
    if sent.response.status_code != 200:
        return [f"{step.text}: HTTP {sent.response.status_code}"]
    ack = sent.response.json().get("text") if sent.response.content else None
    if ack:
        show.only_you(step.who, ack)
    if not runtime.services.background.wait_idle(30):
        return [f"/incident {step.text}: the work after the acknowledgement did not finish in 30 s"]
    problems = show.new_activity()
    if ack and ack.startswith(":warning:"):
        problems.append(f"{step.text}: {show.plain(ack)}")
    return problems


def _say(step: Step, channel: str, requests: SlackRequests) -> list[str]:
    """A message in the incident channel, delivered to the bot as Slack's Events API would."""
    ts = f"{time.time():.6f}"
    event = {"type": "message", "channel": channel, "user": step.who, "text": step.text, "ts": ts, "event_ts": ts}
    sent = [requests.event(event)]
    if step.pushpin_by:
        sent.append(requests.event({"type": "reaction_added", "user": step.pushpin_by, "reaction": "pushpin",
                                    "item_user": step.who, "item": {"type": "message", "channel": channel, "ts": ts}}))
    return [f"the event for “{step.text}”: HTTP {s.response.status_code}" for s in sent if s.response.status_code != 200]


def _save_postmortem(workdir: Path, runtime: Runtime) -> Path | None:
    """The draft uploaded at close, also written beside the store for reading."""
    incident = runtime.services.incidents.find("1")
    latest = runtime.services.postmortems.latest(incident.id) if incident else None
    if incident is None or latest is None or latest.markdown is None:
        return None
    path = workdir / f"postmortem-incident-{incident.number}.md"
    path.write_text(latest.markdown, encoding="utf-8")
    return path


def _print_timeline(out: TextIO, runtime: Runtime) -> None:
    incident = runtime.services.incidents.find("1")
    if incident is None:
        out.write("\nNo incident was recorded.\n")
        return
    out.write(f"\nThe timeline the bot recorded for incident {incident.number} ({incident.channel_name}):\n")
    for entry in runtime.services.timeline.items(incident.id):
        who = PEOPLE.get(entry.actor_id or "", entry.actor_id or "bot") + (" :pushpin:" if entry.key_event else "")
        detail = f": {_Printer.plain(entry.text)}" if entry.text else ""
        data = entry.data
        before, after = (PEOPLE.get(data.get("from") or "", data.get("from") or "none"), PEOPLE.get(data.get("to") or "", data.get("to")))
        change = f": {before} → {after}" if after and not entry.text else ""
        if data.get("role"):
            change += f" ({data['role']})"
        out.write(f"  {entry.occurred_at:%H:%M:%S} UTC  {entry.kind:<16} {who}{detail}{change}\n")


class _Printer:
    """Prints what a person in the workspace would have seen, in plain text."""

    def __init__(self, out: TextIO, slack: SlackSimulator) -> None:
        self._out = out
        self._slack = slack
        self._seen_calls = 0
        self._seen_responses = 0

    def narrate(self, text: str) -> None:
        self._out.write(f"\n{text}\n")

    def typed(self, who: str, text: str) -> None:
        self._out.write(f"  {PEOPLE.get(who, who)} › {self.plain(text)}\n")

    def only_you(self, who: str, text: str) -> None:
        self._out.write(f"    (only {PEOPLE.get(who, who)} sees) {self.plain(text)}\n")

    def new_activity(self) -> list[str]:
        """Print the bot's Slack activity since the last call; return the failed calls."""
        calls = self._slack.calls
        fresh, self._seen_calls = calls[self._seen_calls :], len(calls)
        problems = []
        for call in fresh:
            if not call.response.get("ok", False) and call.response.get("error") not in ("already_in_channel",):
                problems.append(f"{call.method} answered {call.response.get('error') or call.http_status}")
            elif call.method == "chat.postMessage":
                where = self._channel_name(call.params.get("channel", ""))
                self._out.write(f"    #{where} · incident-bot: {self.plain(call.params.get('text', ''))}\n")
            elif call.method == "conversations.create":
                self._out.write(f"    (channel #{call.response['channel']['name']} created)\n")
            elif call.method == "files.completeUploadExternal":
                for file in call.response.get("files", []):
                    self._out.write(f"    (file {file['name']} posted: {file.get('permalink')})\n")
            elif call.method == "conversations.setTopic":
                self._out.write(f"    (topic: {self.plain(call.params.get('topic', ''))})\n")
        responses = self._slack.responses()
        for response in responses[self._seen_responses :]:
            self._out.write(f"    (only you see) {self.plain(response.get('text', ''))}\n")
        self._seen_responses = len(responses)
        return problems

    def _channel_name(self, channel_id: str) -> str:
        channel = self._slack.channel(channel_id)
        return channel["name"] if channel else channel_id

    @staticmethod
    def plain(text: str) -> str:
        text = re.sub(r"<@(\w+)(?:\|[^>]*)?>", lambda m: "@" + PEOPLE.get(m.group(1), m.group(1)), text)
        text = re.sub(r"<#\w+\|([^>]*)>", r"#\1", text)
        text = re.sub(r"<!date\^[^|]*\|([^>]*)>", r"\1", text)
        text = re.sub(r":[a-z_]+: ?", "", text)
        return html.unescape(text.replace("\n", " ").replace("*", ""))


