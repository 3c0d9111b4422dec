"""Posting the status-update reminders the scheduler finds due (see bot.reminders)."""

from __future__ import annotations

from bot.reminders import JOB, Reminder
from bot.wording import counted
from handlers.logs import about
from handlers.services import Services


def register(services: Services) -> None:
    def remind(incident_id: int) -> None:
        """The scheduled job: runs on the scheduler's thread, hands the Slack call to the incident's lane."""
        reminder = services.reminders.check(incident_id)
        if reminder is not None:
            with about(reminder.incident.number):
                services.background.submit(incident_id, lambda: post(services, reminder))

    services.scheduler.handle(JOB, remind)


def post(services: Services, reminder: Reminder) -> None:
    incident = reminder.incident
    if incident.channel_id is None:
        return
    minutes = int(reminder.interval.total_seconds() // 60)
    since = "since the last one" if reminder.last_update else "since the incident was declared"
    who = f"<@{incident.commander}>" if incident.commander else "Commander"
    announce = services.settings.file.slack.announce_channel
    where = f" and in <#{announce}>" if announce and not incident.private else ""  # a private one's are not announced
    if incident.channel_archived_at is not None:  # no `/incident update` there: say what still works
        text = (f":alarm_clock: Incident {incident.number} is still {incident.status.label} and its channel is archived. "
                f"Unarchive the channel to carry on there, or resolve it: `incident-bot resolve {incident.number} [summary]`.")
    else:
        text = (f":alarm_clock: No status update for {counted(minutes, 'minute')} {since}; {incident.severity.label} incidents post one at "
                f"least every {'minute' if minutes == 1 else f'{minutes} minutes'}. {who}, post one with `/incident update &lt;text&gt;`: it is shown here{where}.")
    services.publisher.post(incident, text)  # the announcement thread when the channel is archived
