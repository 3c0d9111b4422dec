"""One webhook notification from Prometheus Alertmanager or Grafana Alerting, parsed and checked. Pure.

Shapes followed:
- Alertmanager, `<webhook_config>` (prometheus/alertmanager docs/configuration.md): `version` "4",
  `groupKey`, `truncatedAlerts`, `status`, `receiver`, `groupLabels`, `commonLabels`,
  `commonAnnotations`, `externalURL`, `alerts[]` of {`status`, `labels`, `annotations`, `startsAt`,
  `endsAt`, `generatorURL`, `fingerprint`}. Only version "4" is accepted.
- Grafana Alerting's webhook contact point (grafana/grafana docs/sources/alerting/configure-notifications/
  manage-contact-points/integrations/webhook-notifier.md): the same, with `version` "1", plus `orgId`,
  `title`, `state`, `message` and per alert `silenceURL`, `dashboardURL`, `panelURL`, `imageURL`,
  `values`/`valueString`. A body with any of `orgId`, `title`, `state` or `message` is taken as
  Grafana's, whatever its `version`. Grafana's legacy (pre-8) alerting webhook is refused by name.

Times are RFC 3339 with any number of fractional digits (Go writes nanoseconds; microseconds are
kept) and `Z` or an offset; they come back UTC-aware. `endsAt` "0001-01-01T00:00:00Z" (Go's zero time)
means not ended, and a firing alert has not ended whatever its `endsAt` says (Alertmanager hides a
future end the same way: types.Alerts).

Required, else BadNotification: `status`, `groupKey`, `alerts` (may be empty), and per alert
`status` and `startsAt`. Optional (absent or null is empty): `receiver`, the label and annotation
maps, `externalURL`, `truncatedAlerts`, `endsAt`, `generatorURL`, `fingerprint`. A field that is
present with the wrong type is an error, except the link fields, which are dropped.

Limits (the sender gets a 4xx for a refusal and drops the notification for good, so these clip
rather than refuse):
- at most MAX_ALERTS alerts: the first ones as sent are kept, the rest are added to
  `truncated_alerts` (as Alertmanager's own `max_alerts` does);
- label names and values, and annotation names, at most MAX_LABEL_LENGTH characters; annotation
  values at most MAX_ANNOTATION_LENGTH; receiver and title at most MAX_LABEL_LENGTH. Anything
  longer is shortened to that many with "…" as its last character;
- a fingerprint longer than MAX_FINGERPRINT_LENGTH becomes the sha256 of it (64 hex digits), so it
  fits where it is stored and stays distinct;
- links: http(s) URLs with a host only, characters Slack's `<url|text>` cannot carry (`<`, `>`, `|`,
  spaces, quotes, control and non-ASCII characters) percent-encoded, at most MAX_URL_LENGTH
  characters (Slack's button `url` limit) after that; any other is dropped.
Every string taken has NUL characters (which PostgreSQL refuses) and lone surrogates replaced by
U+FFFD.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlsplit

from bot.json_shapes import shown
from bot.paging.limits import shorten

MAX_ALERTS = 1000
MAX_LABEL_LENGTH = 1024
MAX_ANNOTATION_LENGTH = 4000
MAX_FINGERPRINT_LENGTH = 64
MAX_URL_LENGTH = 3000  # Slack Block Kit, button element: "url … Maximum length is 3000 characters"

ALERTMANAGER_VERSION = "4"
_GRAFANA_FIELDS = ("orgId", "title", "state", "message")
_GRAFANA_LEGACY_FIELDS = ("evalMatches", "ruleId", "ruleName", "ruleUrl")
_STATUSES = ("firing", "resolved")

_SHAPE = ('Alertmanager\'s webhook JSON (version "4": groupKey, status, receiver, groupLabels, commonLabels, '
          "commonAnnotations, externalURL, alerts) or Grafana Alerting's webhook contact point JSON")
_TIME_SHAPE = "an RFC 3339 time such as 2024-05-01T10:00:00.123Z or 2024-05-01T12:00:00+02:00"
_ALERT_SHAPE = "an object {status, labels, annotations, startsAt, endsAt, generatorURL, fingerprint}"
_MAP_SHAPE = "an object of string names to string values"


class BadNotification(ValueError):
    """The body is not a notification this module reads. The message names the field (`alerts[2].startsAt`),
    what was wrong with it, and the shape expected."""


@dataclass(frozen=True)
class Alert:
    fingerprint: str  # as sent (or its sha256 when over 64 characters); absent: sha256 of the sorted labels
    status: str  # "firing" | "resolved"
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime  # UTC-aware
    ends_at: datetime | None  # None: not ended (the zero time, or a firing alert)
    generator_url: str | None  # http(s) only
    links: dict[str, str]  # "source", "dashboard", "panel", "silence", "runbook", "image" -> http(s) URL

    @property
    def name(self) -> str:
        return self.labels.get("alertname") or "alert"

    @property
    def summary(self) -> str:
        return self.annotations.get("summary") or self.annotations.get("description") or ""


@dataclass(frozen=True)
class Notification:
    source: str  # "alertmanager" | "grafana"
    receiver: str
    status: str  # "firing" | "resolved"
    group_key: str  # as sent
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str | None  # http(s) only
    alerts: tuple[Alert, ...]
    truncated_alerts: int  # the sender's truncatedAlerts plus any past MAX_ALERTS dropped here
    title: str | None = None  # Grafana's

    @property
    def labels_for_rules(self) -> dict[str, str]:
        """The group's labels, then its common labels (what every alert of the group carries)."""
        return {**self.group_labels, **self.common_labels}


def identity(alert: Alert) -> tuple[str, datetime]:
    """One occurrence of an alert: an alert that resolves and fires again starts again, so it is a new one."""
    return alert.fingerprint, alert.starts_at


def parse(body: bytes) -> Notification:
    """The notification in `body` (a webhook's raw JSON). Raises BadNotification saying what was wrong."""
    if not body.strip():
        raise BadNotification(f"the body is empty; expected {_SHAPE}")
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise BadNotification(f"the body is not JSON ({_clip(str(error), 100)}); expected {_SHAPE}") from None
    if not isinstance(document, dict):
        raise BadNotification(f"the body is {shown(document)}; expected {_SHAPE}")
    if "alerts" not in document and any(key in document for key in _GRAFANA_LEGACY_FIELDS):
        raise BadNotification("this is Grafana's legacy alerting webhook (ruleName, evalMatches), which is not read; "
                              "send from a Grafana Alerting webhook contact point instead")
    source = "grafana" if any(key in document for key in _GRAFANA_FIELDS) else "alertmanager"
    if source == "alertmanager":
        version = document.get("version")
        if version is None:
            raise BadNotification(f'version is missing; expected "{ALERTMANAGER_VERSION}" (Alertmanager\'s webhook payload '
                                  "version 4; Grafana Alerting's contact point is recognised by orgId, title, state or message)")
        if version != ALERTMANAGER_VERSION:
            raise BadNotification(f'version is {shown(version)}; expected the string "{ALERTMANAGER_VERSION}": only '
                                  "Alertmanager's webhook payload version 4 is read")
    status = _status(document.get("status"), "status")
    group_key = _required_text(document.get("groupKey"), "groupKey", "the key of the alert group (the sender's groupKey)")
    receiver = _optional_text(document.get("receiver"), "receiver") or ""
    title = _optional_text(document.get("title"), "title") if source == "grafana" else None
    group_labels = _labels(document.get("groupLabels"), "groupLabels")
    common_labels = _labels(document.get("commonLabels"), "commonLabels")
    common_annotations = _annotations(document.get("commonAnnotations"), "commonAnnotations")
    truncated = _count(document.get("truncatedAlerts"), "truncatedAlerts")
    alerts = document.get("alerts")
    if "alerts" not in document:
        raise BadNotification(f"alerts is missing; expected an array of {_ALERT_SHAPE}")
    if not isinstance(alerts, list):
        raise BadNotification(f"alerts must be an array; got {shown(alerts)}; expected an array of {_ALERT_SHAPE}")
    return Notification(
        source=source,
        receiver=shorten(receiver, MAX_LABEL_LENGTH),
        status=status,
        group_key=group_key,
        group_labels=group_labels,
        common_labels=common_labels,
        common_annotations=common_annotations,
        external_url=_link(document.get("externalURL")),
        alerts=tuple(_alert(a, f"alerts[{i}]") for i, a in enumerate(alerts[:MAX_ALERTS])),
        truncated_alerts=truncated + max(0, len(alerts) - MAX_ALERTS),
        title=shorten(title, MAX_LABEL_LENGTH) if title else None,
    )


def _alert(value: Any, where: str) -> Alert:
    if not isinstance(value, dict):
        raise BadNotification(f"{where} must be an object; got {shown(value)}; expected {_ALERT_SHAPE}")
    status = _status(value.get("status"), f"{where}.status")
    labels = _labels(value.get("labels"), f"{where}.labels")
    annotations = _annotations(value.get("annotations"), f"{where}.annotations")
    if value.get("startsAt") is None:
        raise BadNotification(f"{where}.startsAt is missing; expected {_TIME_SHAPE}")
    starts_at = _time(value["startsAt"], f"{where}.startsAt")
    if starts_at is None:
        raise BadNotification(f"{where}.startsAt is the zero time 0001-01-01T00:00:00Z; expected when the alert started")
    ends_at = _time(value["endsAt"], f"{where}.endsAt") if value.get("endsAt") is not None else None
    fingerprint = _optional_text(value.get("fingerprint"), f"{where}.fingerprint")
    generator_url = _link(value.get("generatorURL"))
    candidates = {
        "source": generator_url,
        "dashboard": _link(value.get("dashboardURL")),
        "panel": _link(value.get("panelURL")),
        "silence": _link(value.get("silenceURL")),
        "runbook": _link(annotations.get("runbook_url")),
        "image": _link(value.get("imageURL")),
    }
    return Alert(
        fingerprint=_fingerprint(fingerprint, labels),
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=None if status == "firing" else ends_at,
        generator_url=generator_url,
        links={name: url for name, url in candidates.items() if url},
    )


def _fingerprint(sent: str | None, labels: dict[str, str]) -> str:
    """As sent; over MAX_FINGERPRINT_LENGTH, its sha256; absent or empty, the sha256 of the sorted labels
    (the labels identify an alert, as Alertmanager's own fingerprint is a hash of them)."""
    if sent:
        return sent if len(sent) <= MAX_FINGERPRINT_LENGTH else hashlib.sha256(sent.encode("utf-8")).hexdigest()
    canonical = json.dumps(sorted(labels.items()), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _status(value: Any, where: str) -> str:
    if value is None:
        raise BadNotification(f'{where} is missing; expected "firing" or "resolved"')
    if value not in _STATUSES:
        raise BadNotification(f'{where} is {shown(value)}; expected "firing" or "resolved"')
    return str(value)


def _count(value: Any, where: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadNotification(f"{where} is {shown(value)}; expected a whole number, 0 or more (alerts left out)")
    return value


def _required_text(value: Any, where: str, expected: str) -> str:
    if value is None:
        raise BadNotification(f"{where} is missing; expected {expected}")
    if not isinstance(value, str) or not value:
        raise BadNotification(f"{where} must be a non-empty string; got {shown(value)}; expected {expected}")
    return _clean(value)


def _optional_text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadNotification(f"{where} must be a string; got {shown(value)}")
    return _clean(value)


def _labels(value: Any, where: str) -> dict[str, str]:
    return _string_map(value, where, MAX_LABEL_LENGTH)


def _annotations(value: Any, where: str) -> dict[str, str]:
    return _string_map(value, where, MAX_ANNOTATION_LENGTH)


def _string_map(value: Any, where: str, value_limit: int) -> dict[str, str]:
    """A JSON object of strings; absent or null (Go's nil map) is empty. Names are clipped at
    MAX_LABEL_LENGTH and values at `value_limit`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadNotification(f"{where} must be an object; got {shown(value)}; expected {_MAP_SHAPE}")
    result: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(item, str):
            raise BadNotification(f"{where}[{_clip(name, 40)!r}] must be a string; got {shown(item)}; expected {_MAP_SHAPE}")
        result[shorten(_clean(name), MAX_LABEL_LENGTH)] = shorten(_clean(item), value_limit)
    return result


# RFC 3339 section 5.6 date-time: full-date "T" full-time, "T" and "Z" in either case; time-secfrac any length.
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))", re.ASCII)


def _time(value: Any, where: str) -> datetime | None:
    """A UTC-aware time, or None for Go's zero time (year 1, whatever its zone)."""
    if not isinstance(value, str):
        raise BadNotification(f"{where} must be a string; got {shown(value)}; expected {_TIME_SHAPE}")
    found = _RFC3339.fullmatch(value.strip())
    if found is None:
        raise BadNotification(f"{where} is {shown(value)}; expected {_TIME_SHAPE}")
    year, month, day, hour, minute, second = (int(found.group(i)) for i in range(1, 7))
    fraction, zulu, sign, offset_hours, offset_minutes = found.group(7, 8, 9, 10, 11)
    if year == 1 and month == 1 and day == 1:
        return None
    try:
        zone = UTC if zulu else timezone((1 if sign == "+" else -1) * timedelta(hours=int(offset_hours), minutes=int(offset_minutes)))
        microseconds = int((fraction or "0")[:6].ljust(6, "0"))
        return datetime(year, month, day, hour, minute, second, microseconds, tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError) as error:
        raise BadNotification(f"{where} is {shown(value)}, not a real time ({error}); expected {_TIME_SHAPE}") from None


_SAFE_IN_URL = ";/?:@&=+$,#[]!'()*%~-._"  # RFC 3986 reserved and unreserved, and "%" (already encoded)


def _link(value: Any) -> str | None:
    """An http(s) URL with a host, made safe for Slack's <url|text> markup; anything else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    url = quote(_clean(value.strip()), safe=_SAFE_IN_URL)
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:  # a bad port or an unbalanced "[" of an IPv6 host
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or len(url) > MAX_URL_LENGTH:
        return None
    return url


_SURROGATE_OR_NUL = re.compile("[\x00\ud800-\udfff]")


def _clean(text: str) -> str:
    return _SURROGATE_OR_NUL.sub("\ufffd", text)


def _clip(text: str, limit: int) -> str:
    line = " ".join(_clean(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


