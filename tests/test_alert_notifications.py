"""Parsing Alertmanager's and Grafana's webhook notifications, matching `[[alerts.rules]]`, and the
`[alerts]` configuration: pure, no bot running."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.alerts.notification import (
    MAX_ALERTS,
    MAX_ANNOTATION_LENGTH,
    MAX_LABEL_LENGTH,
    BadNotification,
    identity,
    parse,
)
from bot.alerts.rules import Rule, first_match, rules_from
from bot.config import ConfigError, load_settings
from bot.incidents.values import Severity


def alertmanager_example() -> dict[str, Any]:
    """A notification as Alertmanager sends it: the shape of prometheus/alertmanager docs/configuration.md,
    <webhook_config> ("version": "4", groupKey, truncatedAlerts, status, receiver, groupLabels,
    commonLabels, commonAnnotations, externalURL, alerts[] {status, labels, annotations, startsAt, endsAt,
    generatorURL, fingerprint}), with values as Alertmanager writes them: Go's RFC 3339 with nanoseconds,
    the zero time as the end of an alert still firing, a group key of the route and the group's labels."""
    return {
        "version": "4",
        "groupKey": '{}/{severity="critical"}:{alertname="PostgresDown"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "incident-bot",
        "groupLabels": {"alertname": "PostgresDown"},
        "commonLabels": {"alertname": "PostgresDown", "job": "postgres", "severity": "critical", "team": "db"},
        "commonAnnotations": {"runbook_url": "https://runbooks.example.com/postgres/down"},
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "PostgresDown", "instance": "db-1:9187", "job": "postgres",
                           "severity": "critical", "team": "db"},
                "annotations": {"summary": "db-1 is down", "description": "pg_up is 0 for 1 minute",
                                "runbook_url": "https://runbooks.example.com/postgres/down"},
                "startsAt": "2026-11-30T09:00:00.123456789Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=pg_up+%3D%3D+0&g0.tab=1",
                "fingerprint": "4b0f5c3b4a7c2d1e",
            },
            {
                "status": "resolved",
                "labels": {"alertname": "PostgresDown", "instance": "db-2:9187", "job": "postgres",
                           "severity": "critical", "team": "db"},
                "annotations": {"description": "pg_up is 0 for 1 minute"},
                "startsAt": "2026-11-30T08:50:00.5+01:00",
                "endsAt": "2026-11-30T08:58:30.000000001+01:00",
                "generatorURL": "http://prometheus.example.com:9090/graph?g0.expr=pg_up+%3D%3D+0&g0.tab=1",
                "fingerprint": "9e8d7c6b5a493827",
            },
        ],
    }


def grafana_example() -> dict[str, Any]:
    """Grafana's documented example (grafana/grafana docs/sources/alerting/configure-notifications/
    manage-contact-points/integrations/webhook-notifier.md, "Webhook JSON payload"), as printed there."""
    return {
        "receiver": "My Super Webhook",
        "status": "firing",
        "orgId": 1,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
                "annotations": {"description": "The system has high memory usage",
                                "runbook_url": "https://myrunbook.com/runbook/1234",
                                "summary": "This alert was triggered for zone us-1"},
                "startsAt": "2021-10-12T09:51:03.157076+02:00",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
                "fingerprint": "c6eadffa33fcdf37",
                "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
                "dashboardURL": "",
                "panelURL": "",
                "values": {"B": 44.23943737541908, "C": 1},
            },
            {
                "status": "firing",
                "labels": {"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"},
                "annotations": {"description": "The system has high CPU usage",
                                "runbook_url": "https://myrunbook.com/runbook/1234",
                                "summary": "This alert was triggered for zone eu-1"},
                "startsAt": "2021-10-12T09:56:03.157076+02:00",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "https://play.grafana.org/alerting/d1rdpdv7k/edit",
                "fingerprint": "bc97ff14869b13e3",
                "silenceURL": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT1%2Cteam%3Dblue%2Czone%3Deu-1",
                "dashboardURL": "",
                "panelURL": "",
                "values": {"B": 44.23943737541908, "C": 1},
            },
        ],
        "groupLabels": {},
        "commonLabels": {"team": "blue"},
        "commonAnnotations": {},
        "externalURL": "https://play.grafana.org/",
        "version": "1",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "title": "[FIRING:2]  (blue)",
        "state": "alerting",
        "message": "**Firing**\n\nLabels:\n - alertname = T2\n - team = blue\n - zone = us-1\nAnnotations:\n"
                   " - description = This is the alert rule checking the second system\n",
    }


def encoded(body: Any) -> bytes:
    return json.dumps(body).encode()


def refusal(body: Any) -> str:
    with pytest.raises(BadNotification) as raised:
        parse(body if isinstance(body, bytes) else encoded(body))
    return str(raised.value)


# --- Alertmanager and Grafana, as documented.


def test_alertmanagers_notification_is_read_whole() -> None:
    parsed = parse(encoded(alertmanager_example()))
    assert parsed.source == "alertmanager" and parsed.receiver == "incident-bot" and parsed.status == "firing"
    assert parsed.group_key == '{}/{severity="critical"}:{alertname="PostgresDown"}'
    assert parsed.group_labels == {"alertname": "PostgresDown"}
    assert parsed.common_annotations == {"runbook_url": "https://runbooks.example.com/postgres/down"}
    assert parsed.external_url == "http://alertmanager.example.com:9093"
    assert parsed.truncated_alerts == 0 and parsed.title is None
    assert parsed.labels_for_rules == {"alertname": "PostgresDown", "job": "postgres", "severity": "critical", "team": "db"}

    firing, resolved = parsed.alerts
    assert firing.fingerprint == "4b0f5c3b4a7c2d1e" and firing.status == "firing"
    assert firing.name == "PostgresDown" and firing.summary == "db-1 is down"
    assert firing.labels["instance"] == "db-1:9187"
    assert firing.starts_at == datetime(2026, 11, 30, 9, 0, 0, 123456, tzinfo=UTC)  # nanoseconds cut to microseconds
    assert firing.ends_at is None  # Go's zero time: not ended
    assert firing.generator_url == "http://prometheus.example.com:9090/graph?g0.expr=pg_up+%3D%3D+0&g0.tab=1"
    assert firing.links == {"source": firing.generator_url, "runbook": "https://runbooks.example.com/postgres/down"}
    assert identity(firing) == ("4b0f5c3b4a7c2d1e", firing.starts_at)

    assert resolved.status == "resolved" and resolved.summary == "pg_up is 0 for 1 minute"  # no summary: the description
    assert resolved.starts_at == datetime(2026, 11, 30, 7, 50, 0, 500000, tzinfo=UTC)
    assert resolved.ends_at == datetime(2026, 11, 30, 7, 58, 30, tzinfo=UTC)
    assert resolved.starts_at.utcoffset() is not None and resolved.starts_at.tzinfo is UTC


def test_grafanas_documented_example_is_read_whole() -> None:
    parsed = parse(encoded(grafana_example()))
    assert parsed.source == "grafana" and parsed.receiver == "My Super Webhook" and parsed.status == "firing"
    assert parsed.group_key == "{}:{}" and parsed.title == "[FIRING:2]  (blue)"
    assert parsed.group_labels == {} and parsed.labels_for_rules == {"team": "blue"}
    assert parsed.external_url == "https://play.grafana.org/"
    memory, cpu = parsed.alerts
    assert memory.name == "High memory usage" and memory.summary == "This alert was triggered for zone us-1"
    assert memory.fingerprint == "c6eadffa33fcdf37" and cpu.fingerprint == "bc97ff14869b13e3"
    assert memory.starts_at == datetime(2021, 10, 12, 7, 51, 3, 157076, tzinfo=UTC)  # +02:00 taken to UTC
    assert memory.ends_at is None
    assert memory.links == {  # dashboardURL and panelURL are empty: no link
        "source": "https://play.grafana.org/alerting/1afz29v7z/edit",
        "silence": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
        "runbook": "https://myrunbook.com/runbook/1234",
    }


def test_grafanas_dashboard_panel_and_image_links_are_kept() -> None:
    body = grafana_example()
    body["alerts"][0] |= {"dashboardURL": "https://grafana.example.com/d/abc", "panelURL": "https://grafana.example.com/d/abc?viewPanel=2",
                          "imageURL": "https://grafana.example.com/public/img/attachments/x.png"}
    links = parse(encoded(body)).alerts[0].links
    assert links["dashboard"] == "https://grafana.example.com/d/abc"
    assert links["panel"] == "https://grafana.example.com/d/abc?viewPanel=2"
    assert links["image"] == "https://grafana.example.com/public/img/attachments/x.png"


def test_a_resolved_notification_and_its_zero_and_real_ends() -> None:
    body = alertmanager_example()
    body["status"] = "resolved"
    body["alerts"][0] |= {"status": "resolved", "endsAt": "2026-11-30T09:10:00Z"}
    body["alerts"][1] |= {"endsAt": "0001-01-01T00:00:00Z"}  # resolved, but no end sent: still None, not year 1
    parsed = parse(encoded(body))
    assert parsed.status == "resolved"
    assert [a.status for a in parsed.alerts] == ["resolved", "resolved"]
    assert parsed.alerts[0].ends_at == datetime(2026, 11, 30, 9, 10, tzinfo=UTC)
    assert parsed.alerts[1].ends_at is None


def test_a_firing_alert_has_not_ended_whatever_its_end_says() -> None:
    # Alertmanager hides an end not yet reached (types.Alerts); another sender may not.
    body = alertmanager_example()
    body["alerts"][0]["endsAt"] = "2026-11-30T09:05:00Z"
    assert parse(encoded(body)).alerts[0].ends_at is None


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2026-11-30T09:00:00Z", datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),
        ("2026-11-30t09:00:00z", datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),
        ("2026-11-30T09:00:00.1Z", datetime(2026, 11, 30, 9, 0, 0, 100000, tzinfo=UTC)),
        ("2026-11-30T09:00:00.987654321Z", datetime(2026, 11, 30, 9, 0, 0, 987654, tzinfo=UTC)),
        ("2026-11-30T14:30:00+05:30", datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),
        ("2026-11-30T02:00:00.250-07:00", datetime(2026, 11, 30, 9, 0, 0, 250000, tzinfo=UTC)),
        ("2026-12-01T00:30:00+15:30", datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),
        ("2026-11-30T09:00:00-00:00", datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),
    ],
)
def test_times_with_z_offsets_and_fractions_come_back_in_utc(written: str, expected: datetime) -> None:
    body = alertmanager_example()
    body["alerts"][0]["startsAt"] = written
    starts_at = parse(encoded(body)).alerts[0].starts_at
    assert starts_at == expected and starts_at.tzinfo is UTC


# --- What is refused, and how it says so.


def _without(key: str) -> dict[str, Any]:
    body = alertmanager_example()
    del body[key]
    return body


def _alert_with(**fields: Any) -> dict[str, Any]:
    body = alertmanager_example()
    body["alerts"][0] |= fields
    return body


def _alert_without(key: str) -> dict[str, Any]:
    body = alertmanager_example()
    del body["alerts"][0][key]
    return body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "the body is empty; expected Alertmanager's webhook JSON (version \"4\""),
        (b"<html>", "the body is not JSON ("),
        (b"\xff\xfe{}", "the body is not JSON ("),
        (b"[" * 100_000, "the body is not JSON ("),
        ([1, 2], "the body is an array; expected Alertmanager's webhook JSON"),
        (_without("version"), 'version is missing; expected "4" (Alertmanager\'s webhook payload version 4; Grafana Alerting\'s '
                              "contact point is recognised by orgId, title, state or message)"),
        ({**alertmanager_example(), "version": "3"},
         "version is the string '3'; expected the string \"4\": only Alertmanager's webhook payload version 4 is read"),
        ({**alertmanager_example(), "version": 4}, "version is a number (4); expected the string \"4\""),
        (_without("status"), 'status is missing; expected "firing" or "resolved"'),
        ({**alertmanager_example(), "status": "pending"}, "status is the string 'pending'; expected \"firing\" or \"resolved\""),
        (_without("groupKey"), "groupKey is missing; expected the key of the alert group"),
        ({**alertmanager_example(), "groupKey": ""}, "groupKey must be a non-empty string; got an empty string"),
        ({**alertmanager_example(), "receiver": 7}, "receiver must be a string; got a number (7)"),
        ({**alertmanager_example(), "commonLabels": ["team=db"]},
         "commonLabels must be an object; got an array; expected an object of string names to string values"),
        ({**alertmanager_example(), "groupLabels": {"alertname": None}},
         "groupLabels['alertname'] must be a string; got null; expected an object of string names to string values"),
        ({**alertmanager_example(), "truncatedAlerts": -1}, "truncatedAlerts is a number (-1); expected a whole number, 0 or more"),
        ({**alertmanager_example(), "truncatedAlerts": True}, "truncatedAlerts is a boolean (true); expected a whole number"),
        (_without("alerts"), "alerts is missing; expected an array of an object {status, labels, annotations, startsAt"),
        ({**alertmanager_example(), "alerts": {"status": "firing"}}, "alerts must be an array; got an object"),
        ({**alertmanager_example(), "alerts": ["PostgresDown"]},
         "alerts[0] must be an object; got the string 'PostgresDown'; expected an object {status, labels"),
        (_alert_without("status"), 'alerts[0].status is missing; expected "firing" or "resolved"'),
        (_alert_with(status="FIRING"), "alerts[0].status is the string 'FIRING'; expected \"firing\" or \"resolved\""),
        (_alert_with(labels={"severity": 2}), "alerts[0].labels['severity'] must be a string; got a number (2)"),
        (_alert_with(annotations="summary"), "alerts[0].annotations must be an object; got the string 'summary'"),
        (_alert_without("startsAt"), "alerts[0].startsAt is missing; expected an RFC 3339 time such as 2024-05-01T10:00:00.123Z"),
        (_alert_with(startsAt=1764493200), "alerts[0].startsAt must be a string; got a number (1764493200); expected an RFC 3339 time"),
        (_alert_with(startsAt="2026-11-30 09:00:00"), "alerts[0].startsAt is the string '2026-11-30 09:00:00'; expected an RFC 3339 time"),
        (_alert_with(startsAt="2026-11-30T09:00:00"), "alerts[0].startsAt is the string '2026-11-30T09:00:00'; expected an RFC 3339"),
        (_alert_with(startsAt="2026-11-30"), "alerts[0].startsAt is the string '2026-11-30'; expected an RFC 3339 time"),
        (_alert_with(startsAt="2026-02-30T09:00:00Z"), "alerts[0].startsAt is the string '2026-02-30T09:00:00Z', not a real time"),
        (_alert_with(startsAt="2026-11-30T25:00:00Z"), "alerts[0].startsAt is the string '2026-11-30T25:00:00Z', not a real time"),
        (_alert_with(startsAt="0001-01-01T00:00:00Z"), "alerts[0].startsAt is the zero time 0001-01-01T00:00:00Z; expected when"),
        (_alert_with(status="resolved", endsAt="yesterday"), "alerts[0].endsAt is the string 'yesterday'; expected an RFC 3339 time"),
        (_alert_with(fingerprint=12), "alerts[0].fingerprint must be a string; got a number (12)"),
        ({"ruleName": "CPU", "ruleId": 3, "state": "alerting", "evalMatches": [], "title": "[Alerting] CPU"},
         "this is Grafana's legacy alerting webhook (ruleName, evalMatches), which is not read; send from a Grafana "
         "Alerting webhook contact point instead"),
    ],
)
def test_what_is_wrong_is_named_with_its_field_and_the_shape_expected(body: Any, expected: str) -> None:
    assert expected in refusal(body)


def test_a_second_alerts_problem_names_its_index() -> None:
    body = alertmanager_example()
    body["alerts"][1]["startsAt"] = "soon"
    assert refusal(body).startswith("alerts[1].startsAt is the string 'soon'")


def test_a_long_or_odd_value_is_clipped_in_the_message() -> None:
    body = {**alertmanager_example(), "status": "x" * 500 + "\n" + "y"}
    message = refusal(body)
    assert len(message) < 200 and "\n" not in message and "…" in message


def test_version_4_is_alertmanagers_and_grafana_is_known_by_its_fields() -> None:
    # Grafana sends version "1": read as Grafana's because it carries orgId/title/state/message.
    assert parse(encoded(grafana_example())).source == "grafana"
    grafana_without_version = grafana_example()
    del grafana_without_version["version"]
    assert parse(encoded(grafana_without_version)).source == "grafana"
    for field in ("orgId", "title", "state", "message"):  # any one of them is enough
        only = {k: v for k, v in grafana_example().items() if k not in {"orgId", "title", "state", "message"} - {field}}
        assert parse(encoded(only)).source == "grafana", field
    # The same body without Grafana's own fields is taken as Alertmanager's, and version "1" is refused.
    bare = {k: v for k, v in grafana_example().items() if k not in ("orgId", "title", "state", "message")}
    assert "only Alertmanager's webhook payload version 4 is read" in refusal(bare)
    assert parse(encoded({**bare, "version": "4"})).source == "alertmanager"


def test_optional_fields_may_be_absent_or_null() -> None:
    body = alertmanager_example()
    for key in ("receiver", "truncatedAlerts", "externalURL"):
        del body[key]
    body["groupLabels"] = None  # Go writes a nil map as null
    body["commonAnnotations"] = None
    for key in ("annotations", "endsAt", "generatorURL"):
        del body["alerts"][0][key]
    body["alerts"][1] |= {"labels": None, "annotations": None, "generatorURL": None}
    parsed = parse(encoded(body))
    assert parsed.receiver == "" and parsed.truncated_alerts == 0 and parsed.external_url is None
    assert parsed.group_labels == {} and parsed.common_annotations == {}
    first, second = parsed.alerts
    assert first.annotations == {} and first.ends_at is None and first.generator_url is None and first.links == {}
    assert first.summary == "" and second.labels == {} and second.name == "alert"


def test_a_notification_without_alerts_is_read() -> None:
    parsed = parse(encoded({**alertmanager_example(), "alerts": []}))
    assert parsed.alerts == ()


# --- Fingerprints.


def test_an_absent_fingerprint_is_the_sha256_of_the_sorted_labels() -> None:
    body = grafana_example()
    del body["alerts"][0]["fingerprint"]
    body["alerts"][1]["fingerprint"] = ""
    body["alerts"][1]["labels"] = dict(reversed(list(body["alerts"][0]["labels"].items())))  # same labels, other order
    first, second = parse(encoded(body)).alerts
    labels = sorted({"alertname": "High memory usage", "team": "blue", "zone": "us-1"}.items())
    expected = hashlib.sha256(json.dumps(labels, ensure_ascii=False, separators=(",", ":")).encode()).hexdigest()
    assert first.fingerprint == second.fingerprint == expected
    body["alerts"][1]["labels"]["zone"] = "us-2"
    assert parse(encoded(body)).alerts[1].fingerprint != expected


def test_a_fingerprint_too_long_to_store_becomes_its_sha256() -> None:
    long = "f" * 65
    first, second = parse(encoded(_alert_with(fingerprint=long))).alerts
    assert first.fingerprint == hashlib.sha256(long.encode()).hexdigest() and len(first.fingerprint) == 64
    assert parse(encoded(_alert_with(fingerprint="f" * 64))).alerts[0].fingerprint == "f" * 64


def test_one_alert_firing_again_is_another_occurrence() -> None:
    body = alertmanager_example()
    before = parse(encoded(body)).alerts[0]
    body["alerts"][0]["startsAt"] = "2026-11-30T10:00:00Z"
    again = parse(encoded(body)).alerts[0]
    assert before.fingerprint == again.fingerprint and identity(before) != identity(again)


# --- Links.


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "ftp://files.example.com/x", "/alerting/grafana/abc/view", "http://", "https:///path",
     "mailto:oncall@example.com", "data:text/html,<b>x</b>", "http://[::1", "  ", "https://example.com/" + "a" * 3000, 42, ["https://x.example"]],
)
def test_only_http_links_are_kept(url: Any) -> None:
    body = _alert_with(generatorURL=url, silenceURL=url, annotations={"runbook_url": url} if isinstance(url, str) else {})
    alert = parse(encoded(body)).alerts[0]
    assert alert.links == {} and alert.generator_url is None


def test_links_are_made_safe_for_slack_markup() -> None:
    body = _alert_with(generatorURL="HTTPS://grafana.example.com/d/a b?x=<1>|y&z=\"é\"")
    url = parse(encoded(body)).alerts[0].links["source"]
    assert url == "HTTPS://grafana.example.com/d/a%20b?x=%3C1%3E%7Cy&z=%22%C3%A9%22"
    assert not set(url) & set("<>| \"")


def test_the_external_url_is_kept_only_when_http() -> None:
    assert parse(encoded({**alertmanager_example(), "externalURL": "alertmanager:9093"})).external_url is None


# --- Sizes.


def test_past_the_alert_limit_the_rest_are_counted_as_truncated() -> None:
    body = alertmanager_example()
    one = body["alerts"][0]
    body["alerts"] = [{**one, "fingerprint": f"{i:016x}"} for i in range(MAX_ALERTS + 5)]
    body["alerts"][-1] = "not even an alert"  # past the limit: not read at all
    body["truncatedAlerts"] = 7  # Alertmanager's own max_alerts left these out already
    parsed = parse(encoded(body))
    assert len(parsed.alerts) == MAX_ALERTS == 1000
    assert parsed.alerts[-1].fingerprint == f"{MAX_ALERTS - 1:016x}"
    assert parsed.truncated_alerts == 7 + 5


def test_long_labels_and_annotations_are_clipped_with_an_ellipsis() -> None:
    body = _alert_with(labels={"alertname": "A" * 5000, "n" * 2000: "v"}, annotations={"description": "d" * 10_000, "summary": "short"})
    alert = parse(encoded(body)).alerts[0]
    assert len(alert.name) == MAX_LABEL_LENGTH == 1024 and alert.name.endswith("…") and alert.name.startswith("AAA")
    assert ("n" * (MAX_LABEL_LENGTH - 1) + "…") in alert.labels
    assert len(alert.annotations["description"]) == MAX_ANNOTATION_LENGTH == 4000
    assert alert.annotations["summary"] == "short"
    exact = "x" * MAX_LABEL_LENGTH
    assert parse(encoded(_alert_with(labels={"alertname": exact}))).alerts[0].name == exact  # at the limit: whole


def test_nul_and_lone_surrogates_become_replacement_characters() -> None:
    body = _alert_with(labels={"alertname": "Disk\u0000Full"}, annotations={"summary": "bad \ud800 half"})
    body["groupKey"] = "{}:{alertname=\"Disk\u0000Full\"}"
    parsed = parse(encoded(body))
    assert parsed.alerts[0].name == "Disk\ufffdFull" and parsed.alerts[0].summary == "bad \ufffd half"
    assert "\x00" not in parsed.group_key
    parsed.alerts[0].summary.encode("utf-8")  # encodable: it can be stored and sent


def test_label_names_are_arbitrary_strings() -> None:
    labels = {"alertname": "X", "app.kubernetes.io/name": "api", "": "empty name", "ümlaut": "ja", "with space": "a = b"}
    assert parse(encoded(_alert_with(labels=labels))).alerts[0].labels == labels


# --- Rules.


def rule(declare: bool = False, page: str | None = None, severity: Severity | None = None, /, **match: str) -> Rule:
    return Rule(match=match, declare=declare, incident_severity=severity, page=page)


def test_the_first_matching_rule_wins() -> None:
    critical_db = rule(True, "database", Severity.SEV1, severity="critical", team="db")
    critical = rule(False, None, Severity.SEV2, severity="critical")
    rules = [critical_db, critical]
    assert first_match(rules, {"severity": "critical", "team": "db", "instance": "db-1"}) is critical_db
    assert first_match(rules, {"severity": "critical", "team": "web"}) is critical
    assert first_match([critical, critical_db], {"severity": "critical", "team": "db"}) is critical  # order decides


def test_every_label_of_a_rule_must_hold_exactly() -> None:
    critical_db = rule(severity="critical", team="db")
    assert first_match([critical_db], {"severity": "critical"}) is None  # team missing
    assert first_match([critical_db], {"severity": "critical", "team": "DB"}) is None  # values are case-sensitive
    assert first_match([critical_db], {"severity": "critical", "team": "db "}) is None
    assert first_match([critical_db], {"Severity": "critical", "team": "db"}) is None  # so are names
    assert first_match([rule(**{"team": ""})], {}) is None  # an empty value still needs the label


def test_no_rules_match_nothing() -> None:
    assert first_match([], {"severity": "critical"}) is None


def test_a_notifications_rule_labels_are_its_group_then_common_labels() -> None:
    parsed = parse(encoded(alertmanager_example()))
    rules = [rule(severity="critical", team="web"), rule(True, severity="critical", team="db")]
    assert first_match(rules, parsed.labels_for_rules) is rules[1]
    assert first_match([rule(instance="db-1:9187")], parsed.labels_for_rules) is None  # not common to the group


# --- The [alerts] configuration.

ENV = {"SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": "test-secret-value"}
TOKEN = "a-webhook-token-for-the-tests"
TEAMS = """
[slack]
announce_channel = "C0INCIDENTS"

[teams.database]
slack_members = ["U0DBA1"]

[teams.sre]
slack_members = ["U0SRE1"]
"""


def settings_of(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "incident-bot.toml"
    path.write_text(text)
    return load_settings({**ENV, "INCIDENT_BOT_CONFIG": str(path)}, mode="http")


def problems_of(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        settings_of(tmp_path, text)
    path = str(tmp_path / "incident-bot.toml")
    assert all(p.startswith(path + ": ") for p in raised.value.problems)
    return [p.removeprefix(path + ": ") for p in raised.value.problems]


def test_the_documented_alerts_section_is_accepted(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, TEAMS + f"""
[alerts]
channel = "C0ALERTS"
webhook_token = "{TOKEN}"

[[alerts.rules]]
match = {{ severity = "critical", team = "db" }}
declare = true
incident_severity = "sev1"
page = "database"

[[alerts.rules]]
match = {{ severity = "warning", "app.kubernetes.io/name" = "api" }}
""")
    alerts = settings.file.alerts
    assert alerts.channel == "C0ALERTS" and alerts.webhook_token == TOKEN
    assert TOKEN in settings.secrets()
    assert settings.warnings == []
    first, second = rules_from(alerts)
    assert first == Rule({"severity": "critical", "team": "db"}, True, Severity.SEV1, "database")
    assert second == Rule({"severity": "warning", "app.kubernetes.io/name": "api"}, False, Severity.SEV2, None)  # the defaults


def test_without_an_alerts_section_there_is_nothing_to_do(tmp_path: Path) -> None:
    alerts = settings_of(tmp_path, TEAMS).file.alerts
    assert alerts.channel is None and alerts.webhook_token is None and rules_from(alerts) == []


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ('[alerts]\nchannel = "#alerts"\n',
         "alerts.channel: '#alerts' is not valid: use the channel's id (C0123ABCD, from the channel's details), not its name"),
        ("[alerts]\nchanel = \"C0ALERTS\"\n", "alerts.chanel: unknown key"),
        ("[[alerts.rules]]\nmatch = {}\ndeclare = true\n",
         "alerts.rules.0.match: empty; name at least one label = value (all must hold): a rule without one would match every alert"),
        ("[[alerts.rules]]\ndeclare = true\n", "alerts.rules.0.match: Field required"),
        ('[[alerts.rules]]\nmatch = { severity = 1 }\n', "alerts.rules.0.match.severity: expected a string, got int 1"),
        ('[[alerts.rules]]\nmatch = "severity=critical"\n', "alerts.rules.0.match: expected a table, got str 'severity=critical'"),
        ('[[alerts.rules]]\nmatch = { severity = "critical" }\ndeclare = "yes"\n',
         "alerts.rules.0.declare: expected true or false, got str 'yes'"),
        ('[[alerts.rules]]\nmatch = { severity = "critical" }\nincident_severity = "SEV1"\n',
         "alerts.rules.0.incident_severity: input should be 'sev1', 'sev2', 'sev3' or 'sev4'"),
        ('[[alerts.rules]]\nmatch = { severity = "critical" }\nseverity = "sev1"\n', "alerts.rules.0.severity: unknown key"),
        (f'[[alerts.rules]]\nmatch = {{ severity = "{"c" * 1025}" }}\n',
         "alerts.rules.0.match: severity: longer than the 1024 characters a label name or value is kept to, so it could never match"),
        ('[[alerts.rules]]\nmatch = { severity = "critical" }\ndeclare = true\npage = "dba"\n',
         "alerts.rules.0.page: no team named 'dba' (teams: database, sre)"),
        ('[[alerts.rules]]\nmatch = { a = "b" }\n[[alerts.rules]]\nmatch = { a = "c" }\ndeclare = true\npage = ""\n',
         "alerts.rules.1.page: no team named '' (teams: database, sre)"),
    ],
)
def test_a_bad_alerts_section_is_refused_naming_the_key(tmp_path: Path, section: str, expected: str) -> None:
    assert problems_of(tmp_path, TEAMS + section) == [expected]


def test_paging_from_a_rule_needs_some_team(tmp_path: Path) -> None:
    found = problems_of(tmp_path, '[[alerts.rules]]\nmatch = { a = "b" }\ndeclare = true\npage = "database"\n')
    assert found == ["alerts.rules.0.page: no team named 'database' (teams: none)"]


def test_a_short_webhook_token_is_warned_about_not_refused(tmp_path: Path) -> None:
    """INTERFACE.md's own example reads `webhook_token = "…"`: every key it shows must be accepted."""
    settings = settings_of(tmp_path, TEAMS + '[alerts]\nwebhook_token = "short-token"\n')
    assert settings.file.alerts.webhook_token == "short-token"
    [warning] = [w for w in settings.warnings if ": alerts.webhook_token: " in w]
    assert "shorter than 16 characters" in warning and "short-token" not in warning


@pytest.mark.parametrize("token", ["a token with spaces in it", "tab\tseparated-token-value", "bell\u0007token-value-1234", 42])
def test_a_webhook_token_that_cannot_work_is_refused_and_never_echoed(tmp_path: Path, token: object) -> None:
    [problem] = problems_of(tmp_path, TEAMS + f"[alerts]\nwebhook_token = {json.dumps(token)}\n")
    assert problem.startswith("alerts.webhook_token: ")
    assert str(token) not in problem
    if isinstance(token, str):
        assert problem == ("alerts.webhook_token: use printable characters without spaces, at least 16 (e.g. the output of "
                           "`openssl rand -hex 32`); the sender puts it in an Authorization: Bearer header")
    else:
        assert problem == "alerts.webhook_token: expected a string, got int (value hidden)"


def test_what_is_allowed_but_probably_not_meant_is_warned_about(tmp_path: Path) -> None:
    settings = settings_of(tmp_path, TEAMS + f"""
[alerts]
webhook_token = "{TOKEN}"

[[alerts.rules]]
match = {{ severity = "critical" }}
page = "database"

[[alerts.rules]]
match = {{ severity = "critical", team = "db" }}
declare = true
""")
    path = tmp_path / "incident-bot.toml"
    assert settings.warnings == [
        f"{path}: alerts.rules.0: page = 'database' with declare = false pages that team only when someone presses "
        "Declare incident on the alert's message, never when it fires; set declare = true to page at once",
        f"{path}: alerts.rules.1: never matches: alerts.rules.0 comes first and matches every alert this one would "
        "(the first match wins)",
    ]
    assert TOKEN not in "".join(settings.warnings)


def test_alerts_that_could_not_arrive_or_be_shown_are_warned_about(tmp_path: Path) -> None:
    no_token = settings_of(tmp_path, '[alerts]\nchannel = "C0ALERTS"\n[[alerts.rules]]\nmatch = { a = "b" }\n')
    assert [w.split(": ", 1)[1] for w in no_token.warnings] == [
        "alerts: no webhook_token, so POST /webhooks/alertmanager refuses every notification and the channel and rules are unused"]
    nowhere = settings_of(tmp_path, f'[alerts]\nwebhook_token = "{TOKEN}"\n')
    assert [w.split(": ", 1)[1] for w in nowhere.warnings] == [
        "alerts.channel: not set, and neither is slack.announce_channel: alert groups are stored and rules applied, "
        "but nothing is posted in Slack (no Declare incident button)"]
    assert settings_of(tmp_path, f'[slack]\nannounce_channel = "C0INC"\n[alerts]\nwebhook_token = "{TOKEN}"\n').warnings == []
