"""What the bot sends PagerDuty (Events API v2) and Opsgenie (Alert API) fits their documented limits
for any input the bot accepts, and the keys it makes stay what they have always been.

The limits checked here are written out again from the vendors' documents, not imported from the code
under test: PagerDuty/developer-docs docs/events-API-v2/02-Trigger-Events.md and 01-Overview.md
(routing_key 32, dedup_key 255, payload.summary 1024, 512 KB an event) and Opsgenie's Alert API
documentation (message 130, alias 512, description 15000, entity 512, source 100, user 100, note
25000, tags 20 × 50, details 8000 in total, actions 10 × 50). Bodies go through the project's
Transport over real HTTP to the loopback receivers (simulators.paging), which refuse what the
providers would refuse.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import sessionmaker

from bot.clock import ManualClock
from bot.config import ConfigError, TeamSection, cross_section_problems, load_settings
from bot.incidents.values import MAX_TEXT_LENGTH, MAX_TITLE_LENGTH, Incident, Severity, Status
from bot.paging import opsgenie as og_rules
from bot.paging import pagerduty as pd_rules
from bot.paging.dispatch import Dispatcher
from bot.paging.events import Doer
from bot.paging.keys import MAX_TEAM_KEY, alert_key, team_key_problem
from bot.paging.opsgenie import Opsgenie
from bot.paging.pagerduty import PagerDuty
from bot.paging.providers import Alert, ProviderError, RetryPolicy, Transport
from bot.paging.service import PageView, PagingService
from simulators.paging import OpsgenieReceiver, PagerDutyReceiver

ROUTING_KEY = "R0123456789ABCDEF0123456789ABCDE"  # 32 characters, like an integration key
GENIE = "00000000-0000-0000-0000-000000000000"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WORKSPACE = "https://acme.slack.com/"
PLACES = ["Slack", "PagerDuty", "Opsgenie", "the operator's shell", "incident-bot"]

# The documented limits, in characters unless said otherwise.
PD_DEDUP_KEY, PD_SUMMARY, PD_EVENT_BYTES = 255, 1024, 512 * 1024
OG = {"message": 130, "alias": 512, "description": 15000, "entity": 512, "source": 100, "user": 100, "note": 25000}
OG_TAGS, OG_TAG, OG_DETAILS = 20, 50, 8000

LIMITS = settings(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])


# -- inputs the bot accepts ---------------------------------------------------------------------------

# Slack markup and the characters that stretch an encoding: what people type, as Slack sends it.
PIECES = ["<@U0ALICE>", "<@U0BOB|bob>", "<#C0GENERAL|general>", "<!here>", "&amp;", "&lt;", "&gt;",
          "<https://example.com/search?q=a&amp;b=c|the &lt;dashboard&gt;>", "<https://example.com/" + "p" * 300 + ">",
          "\n", " ", "*", "`", "…", "😀", "👩\u200d💻", "🇫🇷", "e\u0301", "漢字", "\u200b", "\t", "\u2028"]
CHARS = st.characters(blacklist_categories=["Cs"])  # a lone surrogate cannot come from Slack or TOML


@st.composite
def _text(draw: st.DrawFn, limit: int, *, blank: bool = True) -> str:
    """Text of at most `limit` characters, half the time filled right up to it."""
    pieces = draw(st.lists(st.sampled_from(PIECES) | st.text(CHARS, min_size=1, max_size=40), max_size=30))
    text = "".join(pieces)[:limit]
    if draw(st.booleans()):
        text += draw(st.sampled_from(["a", "é", "😀", "&amp;"])) * limit
        text = text[:limit]
    return text if blank or text.strip() else "x"


def titles() -> st.SearchStrategy[str]:
    """Titles as stored: whitespace folded, 150 characters as sent, at most 200 in the store."""
    return st.one_of(_text(MAX_TITLE_LENGTH), _text(200)).map(lambda t: " ".join(t.split()) or "t")


def messages() -> st.SearchStrategy[str]:
    """A page's message: a slash command's text (2,900 typed, up to 5 times that as Slack escapes it),
    or the escalation's words around a team's display name."""
    return st.one_of(st.just(""), _text(300), _text(MAX_TEXT_LENGTH * 5),
                     display_names().map(lambda name: f"Escalated: {name} did not acknowledge within 10 minutes."))


def display_names() -> st.SearchStrategy[str]:
    """[teams.x] display_name: any string the file holds (the config sets no length)."""
    return st.one_of(_text(100), _text(2000))


def team_keys() -> st.SearchStrategy[str]:
    """Team keys check-config accepts: 1-64 characters, not blank, no control characters."""
    chars = st.characters(blacklist_categories=["Cc", "Cs"])
    return st.one_of(st.text(chars, min_size=1, max_size=MAX_TEAM_KEY),
                     st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=MAX_TEAM_KEY, max_size=MAX_TEAM_KEY)
                     ).filter(lambda key: team_key_problem(key) is None)


channel_ids = st.from_regex(r"\A[CG][A-Z0-9]{8,12}\Z")
channel_names = st.one_of(st.text("abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=80),
                          st.text(CHARS, min_size=1, max_size=80))  # Slack's rule; any text is tried too
doers = st.builds(Doer, st.one_of(st.just("Dana Scully"), _text(150), st.just(" ")), st.sampled_from(PLACES))


# -- the receivers, over real HTTP --------------------------------------------------------------------


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[PagerDutyReceiver, OpsgenieReceiver]]:
    with PagerDutyReceiver(routing_keys=[ROUTING_KEY]) as pd, OpsgenieReceiver(api_keys=[GENIE]) as og:
        yield pd, og


@pytest.fixture(scope="module")
def transport() -> Iterator[Transport]:
    transport = Transport(RetryPolicy(attempts=1))  # a refusal is a ProviderError at once
    yield transport
    transport.close()


@pytest.fixture(scope="module")
def dispatcher() -> Iterator[Dispatcher]:
    dispatcher = Dispatcher()
    yield dispatcher
    dispatcher.shutdown()


def providers(receivers: tuple[PagerDutyReceiver, OpsgenieReceiver], transport: Transport) -> tuple[PagerDuty, Opsgenie]:
    pd, og = receivers
    return PagerDuty(transport, pd.url + "/v2/enqueue", ROUTING_KEY), Opsgenie(transport, og.url, GENIE)


def service(team: str, display_name: str, pagers: list[Any], dispatcher: Dispatcher) -> PagingService:
    teams = {team: TeamSection(display_name=display_name, pagerduty_routing_key=ROUTING_KEY, opsgenie_api_key=GENIE)}
    return PagingService(sessionmaker(), ManualClock(NOW), teams, lambda _: pagers, None,
                         lambda incident: f"{WORKSPACE}archives/{incident.channel_id}" if incident.channel_id else None,
                         dispatcher)


# -- what must hold of every body sent ----------------------------------------------------------------


def shortened_from(sent: str, full: str) -> bool:
    """`sent` is `full`, or honestly shortened from it: a beginning of it and "…"."""
    return sent == full or (sent.endswith("…") and full.startswith(sent[:-1]))


def check_pagerduty(body: dict[str, Any], key: str) -> None:
    assert len(body["routing_key"]) == 32 and body["dedup_key"] == key and len(key) <= PD_DEDUP_KEY
    size = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())  # as httpx sends it
    assert size <= PD_EVENT_BYTES
    if body["event_action"] != "trigger":
        assert set(body) == {"routing_key", "event_action", "dedup_key"}  # Events v2 carries no more
        return
    payload = body["payload"]
    assert payload["summary"].strip() and len(payload["summary"]) <= PD_SUMMARY
    assert payload["source"] == "incident-bot" and payload["severity"] in ("critical", "error", "warning", "info")
    assert all(isinstance(value, str) for value in payload["custom_details"].values())
    assert all(link["href"].startswith(WORKSPACE) for link in body.get("links", []))


def check_opsgenie_create(body: dict[str, Any], key: str) -> None:
    assert body["alias"] == key
    for name, most in OG.items():
        assert name not in body or len(body[name]) <= most, (name, len(body[name]))
    assert body["message"].strip()
    assert len(body["tags"]) <= OG_TAGS and all(0 < len(tag) <= OG_TAG for tag in body["tags"])
    assert sum(len(k) + len(v) for k, v in body["details"].items()) <= OG_DETAILS
    assert not {"actions", "responders", "visibleTo"} & set(body)


def check_opsgenie_action(path: str, query: dict[str, str], body: dict[str, Any], key: str, by: Doer, verb: str) -> None:
    assert unquote(path.split("/")[3]) == key and query == {"identifierType": "alias"}
    assert body["source"] == "incident-bot" and 0 < len(body["user"]) <= OG["user"] and len(body["note"]) <= OG["note"]
    if by.name.strip() and len(by.name) <= OG["user"]:  # told the truth, in words: who, what, where
        assert body["user"] == by.name
        said = Doer(by.name, by.where).said
        assert body["note"] == (said("Acknowledged") if verb == "acknowledge" else "Closed: " + said("resolved"))
    else:
        assert shortened_from(body["user"], by.name) or (body["user"] == "someone" and not by.name.strip())


# -- end to end: any incident, page, team, channel and person ------------------------------------------


@LIMITS
@given(number=st.integers(1, 10**9), title=titles(), message=messages(), severity=st.sampled_from(Severity),
       team=team_keys(), display_name=display_names(), channel_name=channel_names, channel_id=channel_ids,
       acker=doers, closer=doers)
@example(number=10**9, title="T" * 200, message="&amp;" * MAX_TEXT_LENGTH, severity=Severity.SEV1, team="t" * 64,
         display_name="D" * 5000, channel_name="c" * 80, channel_id="C0123456789AB",
         acker=Doer("A" * 100, "PagerDuty"), closer=Doer("B" * 101, "Slack"))
def test_an_incidents_page_fits_both_providers(
    receivers: tuple[PagerDutyReceiver, OpsgenieReceiver], transport: Transport, dispatcher: Dispatcher,
    number: int, title: str, message: str, severity: Severity, team: str, display_name: str,
    channel_name: str, channel_id: str, acker: Doer, closer: Doer,
) -> None:
    assert cross_section_problems({"teams": {team: {"slack_members": ["U0A"]}}}) == []  # check-config takes it
    pd, og = receivers
    pd.reset()
    og.reset()
    pagerduty, opsgenie = providers(receivers, transport)
    incident = Incident(id=1, number=number, title=title, description=None, severity=severity, status=Status.INVESTIGATING,
                        reporter_id="U0ALICE", declared_at=NOW, updated_at=NOW, channel_id=channel_id, channel_name=channel_name)
    key = alert_key(str(number), team)
    page = PageView(id=1, incident_id=1, team=team, message=message, dedup_key=key, status="sending",
                    requested_by="U0ALICE", requested_at=NOW, escalated_from_id=None)
    alert = service(team, display_name, [], dispatcher).alert(incident, page)

    for provider in (pagerduty, opsgenie):  # a refusal raises ProviderError with the receiver's words
        provider.trigger(alert)
        provider.acknowledge(alert, acker)
        provider.resolve(alert, closer)

    sent = [r for r in pd.received if r.body is not None]
    assert [r.status for r in sent] == [202, 202, 202]
    for received in sent:
        check_pagerduty(received.body, key)  # type: ignore[arg-type]
    assert shortened_from(sent[0].body["payload"]["summary"], alert.summary)  # type: ignore[index]
    create, acknowledge, close = og.received
    assert [create.status, acknowledge.status, close.status] == [202, 202, 202]
    assert create.body is not None and acknowledge.body is not None and close.body is not None
    check_opsgenie_create(create.body, key)
    assert shortened_from(create.body["message"], alert.summary)
    assert create.body["description"].endswith(f"\n\nSlack: {WORKSPACE}archives/{channel_id}")
    check_opsgenie_action(acknowledge.path, acknowledge.query, acknowledge.body, key, acker, "acknowledge")
    check_opsgenie_action(close.path, close.query, close.body, key, closer, "close")


@LIMITS
@given(team=team_keys(), display_name=display_names(), message=messages(), channel_id=channel_ids,
       channel_name=channel_names, actor=doers)
def test_a_page_with_the_store_down_fits_both_providers(
    receivers: tuple[PagerDutyReceiver, OpsgenieReceiver], transport: Transport, dispatcher: Dispatcher,
    team: str, display_name: str, message: str, channel_id: str, channel_name: str, actor: Doer,
) -> None:
    pd, og = receivers
    pd.reset()
    og.reset()
    pagers = list(providers(receivers, transport))
    told = [future.result(timeout=30) for future in
            service(team, display_name, pagers, dispatcher).page_unrecorded(team, message, channel_id, channel_name, actor)]
    assert [(t.provider, t.error) for t in told] == [("PagerDuty", None), ("Opsgenie", None)]
    key = alert_key(channel_id, team)
    [event] = pd.received
    [create] = og.received
    assert event.body is not None and create.body is not None
    check_pagerduty(event.body, key)
    check_opsgenie_create(create.body, key)


# -- each rule at its limit -----------------------------------------------------------------------------


def an_alert(**fields: Any) -> Alert:
    base: dict[str, Any] = {"key": "incident-bot-7-db", "summary": "[SEV1] Incident 7: db down", "severity": Severity.SEV1,
                            "source": "incident-bot", "team": "Database", "timestamp": NOW, "details": {"incident": "7"},
                            "link": f"{WORKSPACE}archives/C0INC7", "link_text": "#inc-7"}
    return Alert(**{**base, **fields})


def test_fields_at_exactly_their_maximum_are_sent_whole_and_accepted(
    receivers: tuple[PagerDutyReceiver, OpsgenieReceiver], transport: Transport,
) -> None:
    pd, og = receivers
    pd.reset()
    og.reset()
    pagerduty, opsgenie = providers(receivers, transport)
    key = "k" * PD_DEDUP_KEY
    pagerduty.trigger(an_alert(key=key, summary="s" * PD_SUMMARY))
    [event] = pd.received
    assert event.status == 202 and event.body is not None
    assert event.body["payload"]["summary"] == "s" * PD_SUMMARY and event.body["dedup_key"] == key

    # Opsgenie's message is the summary shortened to 130; a summary of exactly 130 is sent whole.
    details = {"d": "v" * (OG_DETAILS - 1 - len("slack_channel") - len(f"{WORKSPACE}archives/C0INC7"))}
    opsgenie.trigger(an_alert(key="a" * OG["alias"], summary="m" * OG["message"], team="e" * OG["entity"],
                              source="s" * OG["source"], details=details))
    opsgenie.acknowledge(an_alert(key="a" * OG["alias"]), Doer("u" * OG["user"], "Slack"))
    [create, acknowledge] = og.received
    assert (create.status, acknowledge.status) == (202, 202) and create.body is not None and acknowledge.body is not None
    assert create.body["message"] == "m" * OG["message"] and create.body["entity"] == "e" * OG["entity"]
    assert create.body["source"] == "s" * OG["source"] and create.body["alias"] == "a" * OG["alias"]
    assert sum(len(k) + len(v) for k, v in create.body["details"].items()) == OG_DETAILS
    assert create.body["details"]["d"] == details["d"]
    assert acknowledge.body["user"] == "u" * OG["user"]

    # The description and note cannot reach their maximum from what the bot says; the rules can.
    assert og_rules.description("d" * OG["description"], None) == "d" * OG["description"]
    assert og_rules.note("n" * OG["note"]) == "n" * OG["note"]
    body = {"user": og_rules.user("u" * 100), "source": og_rules.source("s" * 100), "note": og_rules.note("n" * 25000)}
    transport.post(f"{og.url}/v2/alerts/{'a' * 512}/close", body, {"Authorization": f"GenieKey {GENIE}"},
                   params={"identifierType": "alias"})
    assert og.received[-1].status == 202


def test_one_past_the_maximum_is_shortened_with_an_ellipsis() -> None:
    for rule, most in ((pd_rules.summary, PD_SUMMARY), (og_rules.message, OG["message"]), (og_rules.entity, OG["entity"]),
                       (og_rules.source, OG["source"]), (og_rules.user, OG["user"]), (og_rules.note, OG["note"])):
        sent = rule("x" * (most + 1))
        assert len(sent) == most and sent == "x" * (most - 1) + "…", rule
    described = og_rules.description("x" * OG["description"], f"{WORKSPACE}archives/C0INC7")
    assert len(described) == OG["description"] and described.endswith(f"…\n\nSlack: {WORKSPACE}archives/C0INC7")
    fitted = og_rules.details({"title": "t" * 100, "message": "m" * 9000, "team": "db"})
    assert sum(len(k) + len(v) for k, v in fitted.items()) == OG_DETAILS
    assert fitted["title"] == "t" * 100 and fitted["team"] == "db" and fitted["message"].endswith("m…")
    assert og_rules.tags(["incident-bot", "t" * 51, *map(str, range(30))]) == ["incident-bot", *map(str, range(19))]
    assert pd_rules.summary("   ") == "(no summary)" and og_rules.message("") == "(no message)"


def test_a_pagerduty_event_stays_within_512_kb_whatever_the_message(
    receivers: tuple[PagerDutyReceiver, OpsgenieReceiver], transport: Transport,
) -> None:
    pd, _ = receivers
    pd.reset()
    pagerduty, _ = providers(receivers, transport)
    # Characters beyond the BMP take 4 bytes in UTF-8 and 12 escaped: the worst case for the size.
    huge = an_alert(team="Ð" * 300_000, details={"title": "short", "message": "😀" * 600_000})
    event = pd_rules.trigger_event(ROUTING_KEY, huge)
    assert pd_rules.event_size(event) <= PD_EVENT_BYTES
    assert event["payload"]["custom_details"]["title"] == "short"  # short values stay whole
    assert event["payload"]["custom_details"]["message"].endswith("😀…")
    pagerduty.trigger(huge)
    assert pd.received[-1].status == 202

    # An event of exactly 512 KB (measured the largest way it may be encoded) is sent as it is.
    base = pd_rules.trigger_event(ROUTING_KEY, an_alert(details={"pad": ""}))
    pad = "p" * (PD_EVENT_BYTES - pd_rules.event_size(base))
    exact = pd_rules.trigger_event(ROUTING_KEY, an_alert(details={"pad": pad}))
    assert pd_rules.event_size(exact) == PD_EVENT_BYTES and exact["payload"]["custom_details"]["pad"] == pad
    pagerduty.trigger(an_alert(details={"pad": pad}))
    assert pd.received[-1].status == 202


def test_a_key_too_long_for_the_provider_is_never_cut_nor_sent(
    receivers: tuple[PagerDutyReceiver, OpsgenieReceiver], transport: Transport,
) -> None:
    pd, og = receivers
    pd.reset()
    og.reset()
    pagerduty, opsgenie = providers(receivers, transport)
    with pytest.raises(ProviderError, match="dedup_key takes at most 255"):
        pagerduty.trigger(an_alert(key="k" * 256))
    with pytest.raises(ProviderError, match="dedup_key takes at most 255"):
        pagerduty.resolve(an_alert(key="k" * 256), Doer("Dana Scully", "Slack"))
    with pytest.raises(ProviderError, match="alias takes at most 512"):
        opsgenie.acknowledge(an_alert(key="k" * 513), Doer("Dana Scully", "Slack"))
    assert pd.received == [] and og.received == []


def test_a_name_that_utf8_cannot_encode_is_still_sent(
    receivers: tuple[PagerDutyReceiver, OpsgenieReceiver], transport: Transport,
) -> None:
    _, og = receivers
    og.reset()
    _, opsgenie = providers(receivers, transport)
    opsgenie.acknowledge(an_alert(), Doer("Dana \ud800Scully", "PagerDuty"))  # a lone surrogate, from webhook JSON
    assert og.received[-1].status == 202 and og.received[-1].body == {
        "user": "Dana \ufffdScully", "source": "incident-bot", "note": "Acknowledged in PagerDuty by Dana \ufffdScully"}


# -- keys ------------------------------------------------------------------------------------------------


@given(scope=st.one_of(st.integers(1, 10**12).map(str), channel_ids), team=team_keys())
def test_alert_key_keeps_todays_keys_for_every_team_key_check_config_accepts(scope: str, team: str) -> None:
    assert alert_key(scope, team) == f"incident-bot-{scope}-{team}"


def test_alert_key_is_todays_key_up_to_255_characters() -> None:
    assert alert_key("42", "database") == "incident-bot-42-database"
    assert alert_key("C0123ABCD", "sre") == "incident-bot-C0123ABCD-sre"
    team = "t" * (255 - len("incident-bot-42-"))
    assert alert_key("42", team) == f"incident-bot-42-{team}"
    longer = alert_key("42", team + "t")
    assert len(longer) == 255 and longer.startswith("incident-bot-42-ttt") and longer != f"incident-bot-42-{team}"[:255]


@given(scope=st.one_of(st.integers(1, 10**12).map(str), channel_ids, st.text(max_size=600)),
       teams=st.lists(st.text(min_size=0, max_size=700), min_size=2, max_size=2, unique=True))
def test_a_long_key_is_shortened_stably_and_apart_for_each_team(scope: str, teams: list[str]) -> None:
    keys = [alert_key(scope, team) for team in teams]
    assert all(len(key) <= 255 for key in keys) and keys[0] != keys[1]
    assert keys == [alert_key(scope, team) for team in teams]  # stable: the same alert next time
    for team, key in zip(teams, keys, strict=True):
        whole = f"incident-bot-{scope}-{team}"
        assert key == whole if len(whole) <= 255 else key[:-17] == whole[:238]


# -- check-config -----------------------------------------------------------------------------------------


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "incident-bot.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_settings({"INCIDENT_BOT_CONFIG": str(path)})
    return [problem.removeprefix(f"{path}: ") for problem in raised.value.problems]


def test_check_config_refuses_a_250_character_team_key(tmp_path: Path) -> None:
    key = "payments-" + "x" * 241
    found = problems(tmp_path, f'[teams.{key}]\nslack_members = ["U0A"]\n[teams.ok]\nslack_members = ["U0B"]\n'
                               f'escalate_after_minutes = 5\nescalate_to = "{key}"\n')
    assert found == [
        "teams.payments-xxxxxxxxxxx…: a team key is at most 64 characters (it is stored, and goes into "
        "PagerDuty's dedup_key, at most 255); this one has 250",
        "teams.ok.escalate_to: names no possible team: a team key is at most 64 characters (it is stored, and goes "
        "into PagerDuty's dedup_key, at most 255); this one has 250",
    ]


def test_check_config_refuses_empty_and_control_character_team_keys(tmp_path: Path) -> None:
    found = problems(tmp_path, '[teams.""]\nslack_members = ["U0A"]\n[teams."db\\tnight"]\nslack_members = ["U0B"]\n'
                               f'[teams.{"y" * 65}]\nslack_members = ["U0C"]\n')
    assert found[0] == 'teams."": a team key cannot be empty or blank; name the team, e.g. [teams.payments]'
    assert found[1].startswith("teams.db\\tnight: a team key cannot hold control characters (found U+0009)")
    assert found[2].endswith("this one has 65") and len(found) == 3


def test_check_config_accepts_a_64_character_team_key(tmp_path: Path) -> None:
    path = tmp_path / "incident-bot.toml"
    path.write_text(f'[teams.{"z" * 64}]\nslack_members = ["U0A"]\n')
    assert list(load_settings({"INCIDENT_BOT_CONFIG": str(path)}).file.teams) == ["z" * 64]
    assert team_key_problem("z" * 64) is None and team_key_problem("z" * 65) is not None
