"""PagerDuty's and Opsgenie's side of a page, as they report it: POST /webhooks/pagerduty (v3 webhooks,
`X-PagerDuty-Signature`) and POST /webhooks/opsgenie (the outgoing Webhook integration, with a custom
header `Authorization: Bearer <[paging] opsgenie_webhook_token>`).

Each answers 401 to a bad credential, 400 to a payload that is not its kind (saying what was wrong),
2xx only once the event is stored (PagerDuty retries anything else: developer-docs webhooks/Behavior),
and 503 while the bot's store is down, so the provider retries. What the event changed is shown in the
channel after the answer.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.paging import webhooks
from bot.paging.events import ProviderEvent
from handlers import paging
from handlers.services import Services
from storage.database import STORE_UNAVAILABLE

log = logging.getLogger(__name__)

Answer = tuple[int, dict[str, Any]]


def pagerduty(services: Services, body: bytes, signature: str | None) -> Answer:
    secret = services.settings.file.paging.pagerduty_webhook_secret
    if not secret:
        return 401, {"error": "PagerDuty webhooks are not configured: set [paging] pagerduty_webhook_secret"}
    if not webhooks.pagerduty_signed(secret, body, signature):
        return 401, {"error": "bad signature: X-PagerDuty-Signature must hold v1=<HMAC-SHA256 of the body>"}
    try:
        event = webhooks.parse_pagerduty(body)
    except webhooks.BadPayload as error:
        return 400, {"error": str(error)}
    return _apply(services, event)


def opsgenie(services: Services, body: bytes, authorization: str | None) -> Answer:
    token = services.settings.file.paging.opsgenie_webhook_token
    if not token:
        return 401, {"error": "Opsgenie webhooks are not configured: set [paging] opsgenie_webhook_token"}
    if not webhooks.bearer_matches(token, authorization):
        return 401, {"error": "bad credential: send Authorization: Bearer <[paging] opsgenie_webhook_token>"}
    try:
        event = webhooks.parse_opsgenie(body, received_at=services.clock.now())
    except webhooks.BadPayload as error:
        return 400, {"error": str(error)}
    return _apply(services, event)


def _apply(services: Services, event: ProviderEvent | webhooks.Ignored) -> Answer:
    if isinstance(event, webhooks.Ignored):
        return 202, {"ignored": event.reason}
    try:
        applied = services.paging.apply(event)
    except STORE_UNAVAILABLE as error:
        log.warning("%s webhook: the store does not answer (%s); answered 503 so it is sent again",
                    event.provider, type(error).__name__)
        return 503, {"error": "the bot's store is down; send it again later"}
    if applied is None:
        return 202, {"matched": False}  # an alert some other tool raised: not ours to act on
    if applied.outcome != "duplicate" and applied.page is not None:
        action = "acknowledge" if event.action.value == "acknowledged" else "resolve"
        paging.report_told(services, applied.page.incident_id, applied.told, action)
        services.background.submit(applied.page.incident_id, lambda: paging.show_event(services, applied))
    return 202, {"matched": True, "outcome": applied.outcome}
