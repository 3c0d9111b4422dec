"""Tables of the bot's own store (SQLAlchemy 2 typed models).

Times are stored in UTC and always come back timezone-aware, on SQLite as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Unicode,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints keep Alembic migrations identical across SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC; naive values are refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Counter(Base):
    """Gap-free sequences. Declarations lock the 'incident' row, so numbers never repeat or skip."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), index=True)
    reporter_id: Mapped[str] = mapped_column(String(32))
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolution_summary: Mapped[str | None] = mapped_column(Text)
    # Where the incident lives in Slack; filled in step by step as the channel is provisioned, so that
    # provisioning interrupted by a crash or a Slack failure can resume where it stopped.
    channel_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    channel_name: Mapped[str | None] = mapped_column(String(80))
    summary_ts: Mapped[str | None] = mapped_column(String(32))
    announcement_ts: Mapped[str | None] = mapped_column(String(32))
    provisioned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last "post a status update" reminder: claimed before posting, so two processes remind once.
    status_reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Since when Slack refuses posts in the channel (someone archived or deleted it); NULL once unarchived.
    channel_archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Declared private (or made private later): its channel is private, announcements leave its title
    # out, and providers are told only its number and severity. Never made public again by the bot.
    private: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    roles: Mapped[list[RoleAssignment]] = relationship(
        back_populates="incident", order_by="RoleAssignment.id", cascade="all, delete-orphan"
    )


class RoleAssignment(Base):
    """Who held which role, and when: history is kept, the current holder has `ended_at` unset."""

    __tablename__ = "role_assignments"
    __table_args__ = (Index("ix_role_assignments_incident_role", "incident_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(32))
    assigned_by: Mapped[str] = mapped_column(String(32))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    incident: Mapped[Incident] = relationship(back_populates="roles")


class TimelineEntry(Base):
    """One thing that happened during an incident: a change the bot made, a typed note, or a message
    captured from the incident's channel (those carry `slack_ts`, unique per channel)."""

    __tablename__ = "timeline_entries"
    __table_args__ = (
        Index("ix_timeline_entries_incident_time", "incident_id", "occurred_at"),
        UniqueConstraint("channel_id", "slack_ts", name="uq_timeline_entries_channel_ts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Captured messages only.
    channel_id: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    permalink: Mapped[str | None] = mapped_column(Text)
    files: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    earlier_texts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # [{text, until}], oldest first
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Who marked it a key event, and how ("pin", "reaction:U0ALICE"); a key event while any mark stays.
    key_marks: Mapped[list[str] | None] = mapped_column(JSON)
    # A change to be shown in Slack: NULL until it has been, so a start after a crash shows it then.
    # Entries nobody needs to see posted are written with it set.
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Postmortem(Base):
    """One drafted version of an incident's postmortem. A version is requested (in the transaction that
    closes the incident, or by `/incident postmortem`) before it is drafted, so a crash in between leaves
    a row that the next start drafts; `markdown` is set once drafted, `file_id` once uploaded to Slack."""

    __tablename__ = "postmortems"
    __table_args__ = (UniqueConstraint("incident_id", "version", name="uq_postmortems_incident_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str | None] = mapped_column(String(32))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    drafted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    markdown: Mapped[str | None] = mapped_column(Text)
    template: Mapped[str | None] = mapped_column(Text)  # the template it was drafted with; None: the default
    problem: Mapped[str | None] = mapped_column(Text)  # why the team's template was not used, if it was not
    file_id: Mapped[str | None] = mapped_column(String(32))
    permalink: Mapped[str | None] = mapped_column(Text)
    uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PostmortemChart(Base):
    """A PNG drawn for a postmortem version (the connections of one target during the incident), stored
    with its Markdown in the transaction that drafts it: the version uploaded, and uploaded again after a
    restart, is the one drafted, whatever samples have aged out since."""

    __tablename__ = "postmortem_charts"
    __table_args__ = (UniqueConstraint("postmortem_id", "filename", name="uq_postmortem_charts_postmortem_filename"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # No index of its own: the unique constraint's leading column serves "the charts of this version".
    postmortem_id: Mapped[int] = mapped_column(ForeignKey("postmortems.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)  # the order the Markdown shows them in
    target: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(Text)
    caption: Mapped[str] = mapped_column(Text)
    png: Mapped[bytes] = mapped_column(LargeBinary)
    width: Mapped[int] = mapped_column(Integer)  # pixels
    height: Mapped[int] = mapped_column(Integer)


class Followup(Base):
    """An action item for after the incident. Its owner is reminded in a direct message from some days
    after the close until it is marked done; `reminded_at` is claimed before each reminder is sent."""

    __tablename__ = "followups"
    __table_args__ = (Index("ix_followups_incident", "incident_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_by: Mapped[str | None] = mapped_column(String(32))
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminders: Mapped[int] = mapped_column(Integer, default=0)


class Person(Base):
    """Display names of the people in incidents, so postmortems can name them without asking Slack."""

    __tablename__ = "people"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Page(Base):
    """One team paged for one incident. While it is open, paging the team again re-sends the same
    dedup key (PagerDuty) and alias (Opsgenie), so the providers never raise a second alert."""

    __tablename__ = "pages"
    __table_args__ = (Index("ix_pages_incident_team", "incident_id", "team"), Index("ix_pages_dedup_key", "dedup_key"))

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    team: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text, default="")
    dedup_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # sending, sent, failed, acknowledged, resolved
    requested_by: Mapped[str | None] = mapped_column(String(32))  # None: the bot, escalating
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    escalated_from_id: Mapped[int | None] = mapped_column(ForeignKey("pages.id", ondelete="SET NULL"))
    deliveries: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # provider -> {ok, error, attempts, at}
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # claimed once, by one process
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    slack_ts: Mapped[str | None] = mapped_column(String(32))  # the message with the Acknowledge button
    # When the state above (open, acknowledged, resolved) last changed, in the time of whoever changed it
    # (the bot's clock, or a provider event's occurred_at): an older provider event arriving later is
    # recorded but changes nothing, since providers do not promise order.
    state_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When the escalation is due: requested_at + escalate_after_minutes, or later when a provider said the
    # page is unacknowledged again (None on pages older than this column: requested_at + minutes).
    escalation_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PageEvent(Base):
    """One event a provider reported about a page (PagerDuty v3 webhook, Opsgenie outgoing webhook),
    kept so a redelivery is recognised (one row per provider and event id) and so events that name the
    provider's alert only by its own id (`ref`: PagerDuty incident id, Opsgenie alertId) find their page."""

    __tablename__ = "page_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"), Index("ix_page_events_ref", "provider", "ref"))

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(16))  # changed, unchanged, stale, recorded


class DiagnosticRun(Base):
    """One read-only check run against one target: who asked, how it went, and its figures."""

    __tablename__ = "diagnostic_runs"
    __table_args__ = (Index("ix_diagnostic_runs_incident", "incident_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(64))
    check: Mapped[str] = mapped_column(String(32))
    requested_by: Mapped[str | None] = mapped_column(String(32))  # None: the watchdog
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(16))  # ok, refused, unreachable, timeout, error, denied, busy
    headline: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class WatchdogSample(Base):
    """The `connections` figures of one target at one moment, as the watchdog took them."""

    __tablename__ = "watchdog_samples"
    __table_args__ = (Index("ix_watchdog_samples_target_time", "target", "taken_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[str] = mapped_column(String(64))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime())
    in_use: Mapped[int | None] = mapped_column(Integer)
    usable: Mapped[int | None] = mapped_column(Integer)
    idle_in_transaction: Mapped[int | None] = mapped_column(Integer)
    oldest_idle_in_transaction_seconds: Mapped[int | None] = mapped_column(Integer)
    refused: Mapped[bool] = mapped_column(Boolean, default=False)  # the target was full: itself a finding
    error: Mapped[str | None] = mapped_column(Text)  # why there are no figures


class WatchdogAlert(Base):
    """One episode of trouble on one target, from the first alert to the all-clear. At most one open
    episode per target: opening one is a claim, so two bot processes never alert twice."""

    __tablename__ = "watchdog_alerts"
    __table_args__ = (Index("ix_watchdog_alerts_target", "target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    target: Mapped[str] = mapped_column(String(64))
    open_key: Mapped[str | None] = mapped_column(String(64), unique=True)  # the target while open, NULL once cleared
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reasons: Mapped[list[str] | None] = mapped_column(JSON)
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))


class AlertGroup(Base):
    """One Alertmanager (or Grafana) alert group, by its groupKey: one Slack message, kept current.
    `version` counts changes to what the message shows; `shown_version` is what Slack shows, so a storm
    of notifications becomes as few updates as Slack can take."""

    __tablename__ = "alert_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of sender and groupKey (which can be long)
    group_key: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # alertmanager, grafana
    receiver: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))  # firing, resolved (the latest notification's)
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # group labels, then common labels
    annotations: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # common annotations
    external_url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)  # Grafana's
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # An episode: from the first alert firing to all of them resolved. A group that fires again after that
    # is a new episode: a new message, and a new incident when declared (the last one may be closed).
    episode: Mapped[int] = mapped_column(Integer, default=1)
    version: Mapped[int] = mapped_column(Integer, default=1)
    shown_version: Mapped[int] = mapped_column(Integer, default=0)
    slack_channel: Mapped[str | None] = mapped_column(String(32))
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))


class AlertInstance(Base):
    """One alert of a group, one occurrence of it: its fingerprint and when it started (an alert that
    resolves and fires again is a new occurrence)."""

    __tablename__ = "alert_instances"
    __table_args__ = (UniqueConstraint("group_id", "fingerprint", "starts_at", name="uq_alert_instances_occurrence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("alert_groups.id", ondelete="CASCADE"))
    episode: Mapped[int] = mapped_column(Integer, default=1)
    fingerprint: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    annotations: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    links: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# APScheduler's job table, owned by our migrations so the schema has one author. Its shape is
# APScheduler 3's SQLAlchemyJobStore's, which uses it as it finds it.
scheduled_jobs = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


class HeldText(Base):
    """The text of a message a declare form was opened from (the `declare_from_message` shortcut), when it
    is too long to ride in the form's private_metadata (3,000 characters): kept here by the form's view
    id until the form is submitted. Rows older than two days are deleted as new ones come."""

    __tablename__ = "held_texts"

    key: Mapped[str] = mapped_column(String(191), primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    held_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class SlackRequest(Base):
    """Slack requests already acted on, by a key Slack repeats on a retry (a slash command's trigger_id,
    a modal's view id). Written in the same transaction as the change, so a retry finds it."""

    __tablename__ = "slack_requests"

    key: Mapped[str] = mapped_column(String(191), primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
