"""The README's first command: `incident-bot demo` tells the example outage end to end (a real connection leak
in the local PostgreSQL, the watchdog, paging, the postmortem) and leaves nothing behind; without a
PostgreSQL it tells the rest of the story."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any

import psycopg
import pytest

from handlers import demo
from tests.conftest import PG_ADMIN

# What the drafted postmortem's timeline must tell, in this order, whatever the wording around it.
STORY_IN_THE_DRAFT = [
    "**Detection** · incident-bot: PostgresIdleInTransaction firing (monitoring: alertmanager): ",
    "**Declared** · Alice declared the incident (SEV2)",
    "**Message** · Alice: p99 on checkout is 8 s",
    "**Misleading path** · Bob: Buffer tuning and the network checks changed nothing.",
    "**Diagnostic** · Bob ran `connections` on `primary`: ",
    "**Escalation (page)** · Bob paged Database team: Connections idle in transaction",
    "**Page acknowledged** · Database team acknowledged the page: Dave via Slack",
    "📌 **Key event** · Dave: Found it: 12 connections idle in transaction, all from checkout-web v4512.",
    "**Message** · Dave: Rolled back to v4511: the leaked connections are closed.",
    "**Status** · Dave set the status to Monitoring",
    "**Resolved** · Dave resolved the incident: Rolled back deploy 4512",
    "**Follow-up** · Alice added a follow-up (owner: Bob)",
    "**Closed** · Dave closed the incident",
]
NEEDS_THE_LEAK = ("Diagnostic",)


def leaked_connections(settle: float = 3.0) -> int:
    """The demo's leaked connections the server still lists, once it has had up to `settle` seconds to
    drop closed ones: a backend leaves pg_stat_activity a moment after its client hangs up, not at once."""
    deadline = time.monotonic() + settle
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        while True:
            row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                (demo.LEAK_APP,)).fetchone()
            count = int(row[0]) if row else 0
            if count == 0 or time.monotonic() > deadline:
                return count
            time.sleep(0.05)


def drafted(out: str) -> tuple[Path, str]:
    """The postmortem the demo says it wrote, and its timeline section."""
    assert "The drafted postmortem: " in out, out
    path = Path(out.split("The drafted postmortem: ")[1].split("\n")[0])
    assert path.exists(), path
    timeline = path.read_text(encoding="utf-8").split("\n## Timeline\n")[1].split("\n## ")[0]
    return path, timeline


def in_order(timeline: str, expected: list[str]) -> None:
    position = 0
    for line in expected:
        found = timeline.find(line, position)
        assert found >= 0, f"{line!r} missing (or out of order) in the timeline:\n{timeline}"
        position = found


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the probe is closed


def test_the_demo_tells_the_whole_outage_against_the_local_postgresql(tmp_path: Path) -> None:
    executable = str(Path(sys.executable).with_name("incident-bot"))
    started = time.monotonic()
    result = subprocess.run([executable, "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started

    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert took < 60, f"the demo took {took:.0f} s"
    assert "The leak happens in the PostgreSQL at postgresql+psycopg://postgres@127.0.0.1:5432/" in out
    assert "[1/25] A deployment starts leaking database connections." in out
    assert "[2/25] Monitoring raises the first alert." in out
    assert "#incidents · incident-bot: Watchdog: connection trouble on primary" in out and "[Declare incident]" in out
    assert "alice presses [Declare incident] in #incidents" in out
    assert "-postgresidleintransaction-" in out and " created)" in out
    # Time to detect counts from the alert Alertmanager sent, not from the declaration.
    assert "(the alert from alertmanager) to" in Path(drafted(out)[0]).read_text()
    # The diagnostic's headline, with the leak in it (the server may hold others' connections too).
    assert re.search(r"primary connections: \d+ of \d+ usable connections in use .*; \d+ idle in a transaction", out)
    assert "→ PagerDuty got “trigger” for incident-bot-1-database" in out
    assert "dave presses [Acknowledge] in #inc-" in out
    assert "→ PagerDuty got “acknowledge” for incident-bot-1-database (answered 202)" in out
    assert "(file incident-1-postmortem-v1.md posted: " in out
    assert out.rstrip().endswith("s.") and "Every step worked" in out

    path, timeline = drafted(out)
    in_order(timeline, STORY_IN_THE_DRAFT)
    assert "The timeline of the drafted postmortem:" in out and STORY_IN_THE_DRAFT[-1] in out
    assert Path(out.split("The store of this run: ")[1].split()[0]).parent == path.parent
    assert leaked_connections() == 0


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"use_postgres": False}, "--no-diag: the story is told without the leak"),
        ({"diag_url": f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/postgres"},
         "No usable PostgreSQL for the leak (postgresql+psycopg://postgres@127.0.0.1:"),
    ],
    ids=["no-diag", "closed-port"],
)
def test_without_a_postgresql_the_rest_of_the_story_is_told(options: dict[str, Any], said: str) -> None:
    out = StringIO()
    started = time.monotonic()

    assert demo.run_demo(out=out, **options) == 0, out.getvalue()

    printed = out.getvalue()
    assert time.monotonic() - started < 60
    [line] = [line for line in printed.splitlines() if said in line]
    assert "without the leak, the watchdog and /incident diag" in line
    if "diag_url" in options:
        assert "Pass --diag-url postgresql+psycopg://USER@HOST:PORT/DB" in line
    assert "alice presses [Declare incident] in #incidents" in printed
    assert "Watchdog" not in printed.split("The timeline of the drafted postmortem:")[0]
    _, timeline = drafted(printed)
    in_order(timeline, [line for line in STORY_IN_THE_DRAFT if not line.startswith(tuple(f"**{k}" for k in NEEDS_THE_LEAK))])
    assert "Detection (watchdog)" not in timeline and "Diagnostic" not in timeline


def test_a_failed_step_stops_the_story_exits_non_zero_and_closes_the_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    # A page to a team nobody configured: the bot answers with a warning, which is a failed step.
    wrong = demo.Step("U0BOB", "/incident page networking is it the network?", "bob pages the wrong team.")
    story = [s for s in demo.STORY if s.act in ("open_leak", "alertmanager", "watchdog", "press_alert")]
    monkeypatch.setattr(demo, "STORY", [*story, wrong, *demo.STORY[-1:]])
    out = StringIO()

    assert demo.run_demo(out=out) == 1

    printed = out.getvalue()
    assert "Step 5 failed; the story stops here." in printed
    assert "step(s) failed in" in printed and "There is no team networking." in printed
    assert "[6/6]" not in printed and "The drafted postmortem:" not in printed
    assert leaked_connections() == 0
