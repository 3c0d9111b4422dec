"""Slack's side of postmortems: a drafted version uploaded into the incident channel as a Markdown file
(files.uploadV2), linked from the announcement, and failures told to the people who asked."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.incidents.values import Incident
from bot.postmortem.service import PostmortemView
from handlers import blocks, mrkdwn
from handlers.publisher import StepFailed
from handlers.services import Services
from handlers.slack_client import slack_error

log = logging.getLogger(__name__)

ALT_TEXT_MAX = 1000  # Slack: files.getUploadURLExternal, `alt_txt` ("alt_txt_too_large" beyond)


def request_draft(services: Services, incident: Incident, user_id: str, request_key: str,
                  respond: Callable[..., Any]) -> str | None:
    """`/incident postmortem`, or `close` on a closed incident: a new version, stored before the answer."""
    requested = services.postmortems.request(incident.id, user_id, request_key)
    if requested is None:  # a Slack retry of a request already taken
        return None
    services.background.submit(incident.id, lambda: draft_and_post(services, requested.id),
                               on_error=report_failure(services, requested, respond))
    return f":memo: Drafting version {requested.version} of the postmortem of incident {incident.number}; it will be posted here."


def draft_and_post(services: Services, postmortem_id: int) -> PostmortemView:
    """Draft the version (if not drafted yet), upload it to the incident channel, link it from the
    announcement. Safe to run again: each step checks what is already done. A private incident's draft
    goes to its channel only: never the announcement thread, nor a link in the announcement."""
    view = services.postmortems.draft(postmortem_id)
    incident = services.incidents.get(view.incident_id)
    if incident.channel_id is None or view.file_id is not None:
        return view
    assert view.content is not None
    filename = f"incident-{incident.number}-postmortem-v{view.version}.md"
    # The Markdown and its charts in one upload (one files.completeUploadExternal, one message): the
    # Markdown references each PNG by the file name it is uploaded under.
    charts = [{"file": c.png, "filename": c.filename, "title": c.title, "alt_txt": alt_text(c.caption)}
              for c in services.postmortems.charts(view.id)]
    upload = services.publisher.upload(  # the announcement thread instead when the channel is archived
        incident,
        # As stored (UTF-8 bytes when just drafted): decoded, a 100,000-entry draft with one emoji in it
        # would be a str of 88 MB (bench/README.md, postmortem.py).
        file_uploads=[{"content": view.content, "filename": filename,
                       "title": f"Postmortem draft: incident {incident.number}, version {view.version}"}, *charts],
        initial_comment=blocks.postmortem_posted(incident, view.version, view.problem),
    )
    uploaded = upload.get("files") or [upload.get("file") or {}]
    file = next((f for f in uploaded if f.get("name") == filename), uploaded[0])
    permalink = file.get("permalink") or _permalink(services, file["id"])
    view = services.postmortems.record_upload(view.id, file["id"], permalink)
    services.metrics.postmortems.labels("posted").inc()
    _link_from_announcement(services, incident, view)
    return view


def alt_text(caption: str) -> str:
    """An image's alt text for Slack (plain text, as Slack counts it: characters), cut to fit with "…"."""
    return caption if len(caption) <= ALT_TEXT_MAX else caption[: ALT_TEXT_MAX - 1] + "…"


def _permalink(services: Services, file_id: str) -> str | None:
    """files.completeUploadExternal may answer with only the file's id and title."""
    try:
        return services.client.files_info(file=file_id)["file"].get("permalink")
    except (SlackApiError, OSError) as error:
        log.warning("files.info failed for %s: %s", file_id, error)
        return None


def _link_from_announcement(services: Services, incident: Incident, view: PostmortemView) -> None:
    """A private incident's announcement says nothing after its declaration (docs/design.md): no link."""
    channel = services.settings.file.slack.announce_channel
    if not channel or not incident.announcement_ts or incident.private:
        return
    text = blocks.declared_announcement(incident) + "\n" + blocks.postmortem_link(view.version, view.permalink)
    try:
        services.client.chat_update(channel=channel, ts=incident.announcement_ts, text=text)
    except (SlackApiError, OSError) as error:  # the draft is in the channel; the link is a convenience
        log.warning("incident %s: linking the postmortem from the announcement failed: %s", incident.number, error)


def report_failure(services: Services, requested: PostmortemView, respond: Callable[..., Any] | None) -> Callable[[BaseException], None]:
    """Tell the person who asked (or the channel) that the draft is safe but did not reach Slack."""

    def report(error: BaseException) -> None:
        services.metrics.background_failures.inc()
        services.metrics.postmortems.labels("failed").inc()
        incident = services.incidents.get(requested.incident_id)
        view = services.postmortems.get(requested.id)
        if isinstance(error, StepFailed):  # the upload found the channel archived (a private one's: withheld)
            what = error.said
        elif isinstance(error, SlackApiError):
            what = f"Slack said `{slack_error(error)}`"
        elif isinstance(error, SlackRequestError | OSError):
            what = f"Slack could not be reached ({type(error).__name__})"
        else:
            what = f"drafting failed ({type(error).__name__}: {mrkdwn.escape(mrkdwn.clip(str(error), 500))})"
        saved = "is saved" if view.drafted else "was requested and is kept"
        text = mrkdwn.fallback(
            f":warning: Version {view.version} of the postmortem of incident {incident.number} {saved}, but it could not be "
            f"posted: {what}. `incident-bot postmortem {incident.number}` prints the latest draft; "
            "`/incident postmortem` tries again.")
        if respond is not None:
            respond(response_type="ephemeral", replace_original=False, text=text)
        elif incident.channel_id:
            services.publisher.post(incident, text)

    return report
