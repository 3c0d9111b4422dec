"""Fixtures: the bot's store on SQLite and PostgreSQL, the Slack simulator, and the real app served over
HTTP on loopback, driven with signed requests."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

import apscheduler.schedulers.base
import psycopg
import pytest
from sqlalchemy import text

from bot.clock import Clock, ManualClock
from bot.config import Settings, load_settings
from bot.paging.providers import Transport
from handlers.app import Runtime, build_runtime
from handlers.http import BotWsgiApp, HttpServer
from simulators.paging import OpsgenieReceiver, PagerDutyReceiver
from simulators.slack import SlackSimulator
from simulators.slack_requests import SlackRequests
from storage.database import make_engine, migrate

PG_ADMIN = os.environ.get("TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
SIGNING_SECRET = "test-signing-secret-not-real"
ANNOUNCE = "C0INCIDENTS"
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
GENERAL = "C0GENERAL"
# The teams' paging keys and on-call people, as the paging tests configure them.
ROUTING_KEY = "R0123456789ABCDEF0123456789ABCDE"  # PagerDuty routing keys are 32 characters
GENIE_KEY = "00000000-0000-0000-0000-000000000000"
DBA, SRE = "U0DBA1", "U0SRE1"


def database_team(*members: str) -> str:
    """The `[teams.database]` table the paging tests share: PagerDuty, and its Slack members (DBA)."""
    listed = ", ".join(f'"{m}"' for m in members or (DBA,))
    return f"""
[teams.database]
display_name = "Database team"
pagerduty_routing_key = "{ROUTING_KEY}"
slack_members = [{listed}]
"""

def escalating_teams(after_minutes: int = 10) -> str:
    """The paging tests' pair: `[teams.database]` (PagerDuty) escalating after `after_minutes` to
    `[teams.sre]` (Opsgenie, SRE)."""
    return f"""{database_team()}escalate_after_minutes = {after_minutes}
escalate_to = "sre"

[teams.sre]
display_name = "SRE on call"
opsgenie_api_key = "{GENIE_KEY}"
slack_members = ["{SRE}"]
"""


CONFIG = f"""
[slack]
announce_channel = "{ANNOUNCE}"
channel_prefix = "inc"
"""

# Before each test every table of the store is emptied but these two: the schema's version, and the
# counters the migration seeds (reset to 0 instead). Listed from the database, so a table added later
# cannot carry one test's rows into the next.
KEPT_TABLES = ["alembic_version", "counters"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of its own on the local PostgreSQL, migrated once, dropped at the end."""
    name = f"incident_bot_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.db'}"
    url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    with engine.begin() as connection:  # each test starts from an empty, migrated store
        tables = connection.execute(text(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> ALL(:kept) ORDER BY tablename"), {"kept": KEPT_TABLES}).scalars().all()
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        connection.execute(text("UPDATE counters SET value = 0"))
    engine.dispose()
    return url


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyReceiver]:
    with PagerDutyReceiver(routing_keys=[ROUTING_KEY]) as receiver:
        yield receiver


@pytest.fixture
def opsgenie() -> Iterator[OpsgenieReceiver]:
    with OpsgenieReceiver(api_keys=[GENIE_KEY]) as receiver:
        yield receiver


@pytest.fixture
def slack() -> Iterator[SlackSimulator]:
    with SlackSimulator() as simulator:
        simulator.add_user(ALICE, "alice", real_name="Alice Martin", display_name="alice")
        simulator.add_user(BOB, "bob", real_name="Bob Dupont", display_name="bob")
        simulator.add_user(CAROL, "carol", real_name="Carol Weiss", display_name="")
        simulator.add_channel("incidents", channel_id=ANNOUNCE, members=[ALICE, BOB, CAROL])
        simulator.add_channel("general", channel_id=GENERAL, members=[ALICE, BOB, CAROL])
        yield simulator


def make_settings(tmp_path: Path, slack: SlackSimulator, database_url: str, config: str = CONFIG,
                  env: dict[str, str] | None = None) -> Settings:
    config_path = tmp_path / "incident-bot.toml"
    config_path.write_text(config)
    return load_settings(
        {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            "DATABASE_URL": database_url,
            "INCIDENT_BOT_CONFIG": str(config_path),
            "INCIDENT_BOT_SPOOL": str(tmp_path / "spool.db"),
            **(env or {}),
        },
        mode="http",
    )


@dataclass
class RunningBot:
    runtime: Runtime
    server: HttpServer
    slack: SlackSimulator
    requests: SlackRequests

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        self.server.stop()
        self.requests.close()
        self.runtime.close()

    def settle(self) -> None:
        """Wait until the work done after acknowledging has finished: Slack work, provider calls, and the
        Slack work their outcomes bring."""
        assert self.runtime.wait_idle(15), "background work or provider calls did not finish"

    def command(self, text: str, *, user: str = ALICE, channel: str = GENERAL, respond_to: str = "default"):
        return self.requests.command(text, user_id=user, channel_id=channel, response_url=self.slack.response_url(respond_to))

    def declare(self, text: str = "declare sev1 Checkout is timing out", *, user: str = ALICE) -> dict:
        """Declare, wait for Slack set-up, and return the new channel (simulator's view)."""
        sent = self.command(text, user=user)
        assert sent.response.status_code == 200, sent.response.text
        number = re.search(r"Declaring incident (\d+)", sent.response.json().get("text", ""))
        assert number, f"not declared: {sent.response.text}"
        self.settle()
        incident = self.runtime.services.incidents.find(number.group(1))
        assert incident is not None
        assert incident.channel_id, "the incident got no channel"
        channel = self.slack.channel(incident.channel_id)
        assert channel is not None
        return channel


def tick(bot: RunningBot, clock: ManualClock, delta: timedelta) -> None:
    """Move time on and let the scheduler run whatever fell due."""
    clock.advance(delta)
    bot.runtime.services.scheduler.wakeup()
    settle_jobs(bot)


def settle_jobs(bot: RunningBot) -> None:
    time.sleep(0.3)  # the scheduler's thread picks due jobs up on its own, just after wakeup()
    bot.settle()


def start_bot(tmp_path: Path, slack: SlackSimulator, database_url: str, config: str = CONFIG, *,
              env: dict[str, str] | None = None, clock: Clock | None = None,
              paging_transport: Transport | None = None) -> RunningBot:
    runtime = build_runtime(make_settings(tmp_path, slack, database_url, config, env), clock=clock,
                            paging_transport=paging_transport)
    server = HttpServer(BotWsgiApp(runtime), host="127.0.0.1", port=0, threads=16).start()
    requests = SlackRequests(server.url, SIGNING_SECRET, response_url=slack.response_url())
    return RunningBot(runtime, server, slack, requests)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """One clock for the bot and its scheduler: tests move it instead of sleeping."""
    manual = ManualClock(datetime.now(UTC))

    class ClockedDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
            return manual.now().astimezone(tz) if tz else manual.now().replace(tzinfo=None)

    monkeypatch.setattr(apscheduler.schedulers.base, "datetime", ClockedDatetime)
    return manual


@pytest.fixture
def bot(tmp_path: Path, slack: SlackSimulator, database_url: str) -> Iterator[RunningBot]:
    running = start_bot(tmp_path, slack, database_url)
    yield running
    running.stop()
