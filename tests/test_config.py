"""The configuration contract: every documented key accepted, every problem named with key and file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings
from handlers.cli import main

CONTRACT_EXAMPLE = '''
[slack]
announce_channel = "C0INCIDENTS"
channel_prefix = "inc"

[teams.database]
display_name = "Database team"
pagerduty_routing_key = "R0123456789ABCDEF0123456789ABCDE"
slack_members = ["U0DBA1", "U0DBA2"]
escalate_after_minutes = 10
escalate_to = "sre"

[teams.sre]
display_name = "SRE on call"
opsgenie_api_key = "00000000-0000-0000-0000-000000000000"
slack_members = ["U0SRE1"]

[diagnostics.targets.primary]
url = "postgresql+psycopg://diag@127.0.0.1:5432/app"
statement_timeout_ms = 3000

[diagnostics]
allowed_users = ["U0DBA1", "U0SRE1"]

[diagnostics.watchdog]
interval_seconds = 30
usage_alert_percent = 80
idle_in_transaction_alert_seconds = 300
exhaustion_horizon_minutes = 15
auto_declare = false

[paging]
pagerduty_webhook_secret = "webhook-secret-value"

[reminders]
status_update_minutes = { sev1 = 15, sev2 = 30, sev3 = 60, sev4 = 240 }
followup_after_days = 7

[postmortem]
timezone = "Europe/Paris"
template = "postmortem.md.j2"

[alerts]
channel = "C0ALERTS"
webhook_token = "alertmanager-webhook-token-value"

[[alerts.rules]]
match = { severity = "critical", team = "db" }
declare = true
incident_severity = "sev1"
page = "database"
'''

ENV = {"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": "test-secret-value"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "incident-bot.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None, mode: str | None = "http") -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_settings({**ENV, **(env or {}), "INCIDENT_BOT_CONFIG": str(path)}, mode=mode)  # type: ignore[arg-type]
    return raised.value.problems


def write_contract_example(tmp_path: Path) -> Path:
    (tmp_path / "postmortem.md.j2").write_text("# {{ draft.title }}\n")  # the team's template it names, beside it
    return write(tmp_path, CONTRACT_EXAMPLE)


def test_the_contract_example_is_accepted_whole(tmp_path: Path) -> None:
    path = write_contract_example(tmp_path)
    settings = load_settings({**ENV, "INCIDENT_BOT_CONFIG": str(path)}, mode="http")
    file = settings.file
    assert file.slack.announce_channel == "C0INCIDENTS"
    assert file.teams["database"].escalate_to == "sre" and file.teams["sre"].slack_members == ["U0SRE1"]
    assert file.diagnostics.targets["primary"].statement_timeout_ms == 3000
    assert file.diagnostics.watchdog.exhaustion_horizon_minutes == 15
    assert file.reminders.status_update_minutes.sev4 == 240
    assert file.postmortem.timezone == "Europe/Paris"
    assert file.alerts.channel == "C0ALERTS" and file.alerts.rules[0].match == {"severity": "critical", "team": "db"}
    assert file.alerts.rules[0].page == "database" and "alertmanager-webhook-token-value" in settings.secrets()
    assert settings.warnings == []
    assert settings.postmortem_template is not None and settings.postmortem_template.source == str(tmp_path / "postmortem.md.j2")


def test_the_environment_defaults_follow_the_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(ENV, mode="http")
    env = settings.env
    assert env.slack_api_url == "https://slack.com/api/"
    assert env.database_url == "sqlite:///incident-bot.db"
    assert env.config_path == "incident-bot.toml"
    assert env.pagerduty_events_url == "https://events.pagerduty.com/v2/enqueue"
    assert env.opsgenie_api_url == "https://api.opsgenie.com"
    assert settings.config_path is None and "no configuration file" in settings.warnings[0]


def test_every_problem_is_reported_at_once_with_key_and_file(tmp_path: Path) -> None:
    text = CONTRACT_EXAMPLE.replace('channel_prefix = "inc"', 'channel_prefix = "inc"\nchanel_prefix = "x"')
    text = text.replace("escalate_after_minutes = 10", 'escalate_after_minutes = "ten"')
    text = text.replace('escalate_to = "sre"', 'escalate_to = "network"')
    text = text.replace('timezone = "Europe/Paris"', 'timezone = "Mars/Olympus"')
    found = problems(tmp_path, text, env={"SLACK_BOT_TOKEN": ""})
    path = str(tmp_path / "incident-bot.toml")
    assert "SLACK_BOT_TOKEN: not set; the bot token (xoxb-…) from your Slack app's OAuth page is required" in found
    assert f"{path}: slack.chanel_prefix: unknown key" in found
    assert f"{path}: teams.database.escalate_after_minutes: expected an integer, got str 'ten'" in found
    assert f"{path}: teams.database.escalate_to: no team named 'network' (teams: database, sre)" in found
    assert any(p.startswith(f"{path}: postmortem.timezone: unknown time zone 'Mars/Olympus'") for p in found)
    assert len(found) == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[slack]\nannounce_channel = "#incidents"\n', "slack.announce_channel: '#incidents' is not valid: use the channel's id"),
        ("[diagnostics.watchdog]\nusage_alert_percent = 120\n", "diagnostics.watchdog.usage_alert_percent: Input should be less than or equal to 100"),
        ('[teams.db]\nslack_members = "U0DBA1"\n', "teams.db.slack_members: expected a list, got str"),
        ("[paging]\npagerduty_webhook_secret = 42\n", "paging.pagerduty_webhook_secret: expected a string, got int (value hidden)"),
        ("[paging]\nopsgenie_webhook_token = 42\n", "paging.opsgenie_webhook_token: expected a string, got int (value hidden)"),
        ("[alerts]\nwebhook_token = 42\n", "alerts.webhook_token: expected a string, got int (value hidden)"),
        ('[[alerts.rules]]\nmatch = { team = "db" }\ndeclare = true\npage = "db"\n', "alerts.rules.0.page: no team named 'db' (teams: none)"),
        ('[teams.db]\npagerduty_routing_key = "R0SHORT"\n',
         "teams.db.pagerduty_routing_key: a PagerDuty routing key (Events API v2 integration key) has 32 characters; this one has 7"),
        ('[reminders]\nstatus_update_minutes = { sev5 = 3 }\n', "reminders.status_update_minutes.sev5: unknown key"),
        ("[slack\n", "not valid TOML"),
        ('[nonsense]\nx = 1\n', "nonsense: unknown key"),
    ],
)
def test_bad_files_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    [problem] = problems(tmp_path, text)
    assert problem.startswith(str(tmp_path / "incident-bot.toml") + ": ")
    assert expected in problem


def test_a_named_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({**ENV, "INCIDENT_BOT_CONFIG": str(tmp_path / "missing.toml")}, mode="http")
    assert raised.value.problems == [f"{tmp_path / 'missing.toml'}: cannot read the configuration file: it does not exist"]


def test_tokens_are_checked_for_their_mode_and_never_echoed(tmp_path: Path) -> None:
    found = problems(tmp_path, "", env={"SLACK_BOT_TOKEN": "xoxp-user-token-secret", "SLACK_SIGNING_SECRET": "",
                                         "SLACK_APP_TOKEN": "not-an-app-token"}, mode="socket")
    assert "SLACK_BOT_TOKEN: not a bot token; it must start with 'xoxb-'" in found
    assert "SLACK_APP_TOKEN: not an app-level token; it must start with 'xapp-'" in found
    assert not any("xoxp-user-token-secret" in p or "not-an-app-token" in p for p in found)
    assert not any(p.startswith("SLACK_SIGNING_SECRET") for p in found)  # Socket Mode does not sign


def _check_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    executable = str(Path(sys.executable).with_name("incident-bot"))
    clean = {"PATH": "/usr/bin:/bin", **env}
    return subprocess.run([executable, "check-config"], env=clean, cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_check_config_exits_1_listing_every_problem(tmp_path: Path) -> None:
    path = write(tmp_path, '[slack]\nannounce_channel = "general"\n[teams.db]\nslack_members = ["U0A"]\nescalate_to = "x"\n')
    result = _check_config(tmp_path, {"INCIDENT_BOT_CONFIG": str(path)})
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "4 problems found."
    assert any("SLACK_BOT_TOKEN" in line for line in lines) and any("SLACK_SIGNING_SECRET" in line for line in lines)
    assert any("slack.announce_channel" in line for line in lines) and any("teams.db.escalate_to" in line for line in lines)


def test_check_config_passes_the_contract_example(tmp_path: Path) -> None:
    path = write_contract_example(tmp_path)
    result = _check_config(tmp_path, {**ENV, "INCIDENT_BOT_CONFIG": str(path)})
    assert result.returncode == 0, result.stderr
    assert "configuration OK (2 teams, 1 diagnostics target, postmortem template: " in result.stdout


def test_escalation_chains_must_end_and_every_team_must_be_reachable(tmp_path: Path) -> None:
    text = """
[teams.a]
slack_members = ["U0A"]
escalate_after_minutes = 5
escalate_to = "b"
[teams.b]
opsgenie_api_key = "k"
escalate_after_minutes = 5
escalate_to = "c"
[teams.c]
pagerduty_routing_key = "R0123456789ABCDEF0123456789ABCDE"
escalate_to = "a"
[teams.self]
slack_members = ["U0S"]
escalate_after_minutes = 1
escalate_to = "self"
[teams.silent]
display_name = "Nobody"
"""
    found = problems(tmp_path, text)
    path = str(tmp_path / "incident-bot.toml")
    assert f"{path}: teams.a.escalate_to: the escalation chain loops: a → b → c → a" in found
    assert f"{path}: teams.self.escalate_to: the escalation chain loops: self → self" in found
    assert any(p.startswith(f"{path}: teams.silent: no way to reach this team") for p in found)
    assert f"{path}: teams.c.escalate_after_minutes: needed with escalate_to (minutes without an acknowledgement)" in found
    assert len(found) == 4


def test_diagnostics_targets_need_a_supported_url_and_never_echo_it(tmp_path: Path) -> None:
    [problem] = problems(tmp_path, '[diagnostics.targets.primary]\nurl = "oracle://scott:tiger-secret@db/orcl"\n')
    assert "diagnostics.targets.primary.url: not a database URL the diagnostics can use" in problem
    assert "tiger-secret" not in problem


@pytest.mark.parametrize("command", ["resolve", "close"])
def test_a_cli_command_without_its_incident_names_only_what_is_missing(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "the following arguments are required: INCIDENT\n" in error  # SUMMARY is optional
    assert f"incident-bot {command} [-h] INCIDENT" in error
