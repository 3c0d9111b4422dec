"""The real monitoring chain on loopback, for end-to-end tests of the bot's Alertmanager webhook.

A connection leak in PostgreSQL (`Leak`) shows in Debian's `prometheus-postgres-exporter` as
`pg_stat_activity_count{state="idle in transaction"}`; `prometheus` scrapes it every second and evaluates the
rule `PostgresIdleInTransaction` every second; `prometheus-alertmanager` groups the alert and posts webhook v4
to the URL the test gives (`MonitoringChain`). Every process listens on 127.0.0.1 on a port of its own and keeps
its files in a temp dir of its own, so chains in parallel test workers (xdist) never meet.

Versions this was written against (Debian 12): prometheus 2.42.0, alertmanager 0.25.0, postgres_exporter 0.11.1.
Config formats follow https://prometheus.io/docs/prometheus/latest/configuration/configuration/,
https://prometheus.io/docs/prometheus/latest/configuration/alerting_rules/ and
https://prometheus.io/docs/alerting/latest/configuration/ (webhook_config, http_config.authorization: 0.22+).
The configs are written as JSON, which is YAML, so no value needs YAML quoting.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import psycopg
import pytest

ALERT_NAME = "PostgresIdleInTransaction"
# Debian's names first, then upstream's (a tarball install).
BINARIES: dict[str, tuple[str, ...]] = {
    "prometheus": ("prometheus",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),
    "postgres_exporter": ("prometheus-postgres-exporter", "postgres_exporter"),
}
DEBIAN_PACKAGES = "prometheus prometheus-alertmanager prometheus-postgres-exporter"
START_ATTEMPTS = 5  # a port picked free can be taken before the process binds it: then pick again
LEAK_APP = "monitoring-chain-leak"  # the leak's application_name in pg_stat_activity


def require_monitoring() -> None:
    """Skip the calling test when a binary of the chain is missing; under CI (env CI=true) fail instead.

    CI installs the Debian packages (.ci/run), so a missing binary there is a broken install, not a choice.
    """
    missing = [name for name in BINARIES if _binary(name) is None]
    if not missing:
        return
    reason = (f"monitoring chain: {', '.join(missing)} not installed "
              f"(apt-get install -y --no-install-recommends {DEBIAN_PACKAGES})")
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


class MonitoringChain:
    """postgres_exporter -> Prometheus (rule) -> Alertmanager -> `webhook_url`, as a context manager.

    - `postgres_dsn`: a `postgresql://` URL (`postgresql+psycopg://` is accepted too). The exporter reads it;
      the rule counts only the DSN's database (`datname`), so a leak in another database on the same server
      (another test, the demo) neither fires nor holds this chain's alert.
    - `idle_threshold`: the alert fires when at least this many sessions of that database are idle in a
      transaction; labels severity=critical, team=db, datname; annotations summary, description, runbook_url.
    - `bearer_token`: sent as `Authorization: Bearer <token>` on every webhook (http_config.authorization).
    - `extra_route`: YAML lines added to the top-level route as they are (e.g. child `routes:`); they must not
      repeat the keys set here (receiver, group_by, group_wait, group_interval, repeat_interval). Its only
      receiver is named "webhook".

    Alertmanager: group_by [alertname], group_wait 1s, group_interval 1s, repeat_interval 1h, send_resolved.
    Entering starts the three processes and waits until each answers on its port (RuntimeError with the
    process's log if one cannot start); `wait_ready` then waits for the chain as a whole. Leaving stops every
    process, also after a failure; so does interpreter exit, for a chain never left.
    """

    def __init__(self, webhook_url: str, *, bearer_token: str | None = None,
                 postgres_dsn: str = "postgresql://postgres@127.0.0.1:5432/test", idle_threshold: int = 5,
                 extra_route: str = "") -> None:
        self.webhook_url = webhook_url
        self.bearer_token = bearer_token
        self.postgres_dsn = postgres_dsn
        self.idle_threshold = idle_threshold
        self.extra_route = extra_route
        self.database = _database_name(postgres_dsn)
        self.alertmanager_url = ""
        self.prometheus_url = ""
        self.exporter_url = ""
        self.directory: Path | None = None
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> MonitoringChain:
        missing = [name for name in BINARIES if _binary(name) is None]
        if missing:
            raise RuntimeError(f"not installed: {', '.join(missing)} (Debian: {DEBIAN_PACKAGES})")
        self.directory = Path(tempfile.mkdtemp(prefix="monitoring-chain-"))
        atexit.register(self.close)
        try:
            self.exporter_url = self._start("postgres_exporter", self._exporter_command, "/metrics",
                                            env={"DATA_SOURCE_NAME": _exporter_dsn(self.postgres_dsn)})
            self.alertmanager_url = self._start("alertmanager", self._alertmanager_command, "/-/ready")
            self.prometheus_url = self._start("prometheus", self._prometheus_command, "/-/ready")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL after 5 s) and remove the temp dir. Idempotent."""
        for process in reversed(self._processes.values()):
            _stop(process)
        self._processes.clear()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
        atexit.unregister(self.close)

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait until the chain can carry an alert end to end: the exporter reaches PostgreSQL (pg_up 1) and
        Prometheus has scraped it, loaded the rule and found the Alertmanager. TimeoutError says which is not."""
        checks: list[tuple[str, Any]] = [
            ("Prometheus has scraped the exporter, which reaches PostgreSQL",
             lambda: self.query('pg_up{job="postgres"} == 1')),
            ("Prometheus has loaded the rule",
             lambda: [rule for group in self._prometheus_get("/api/v1/rules")["groups"]
                      for rule in group["rules"] if rule["name"] == ALERT_NAME]),
            ("Prometheus has found the Alertmanager",
             lambda: self._prometheus_get("/api/v1/alertmanagers")["activeAlertmanagers"]),
        ]
        deadline = time.monotonic() + timeout
        for what, check in checks:
            while True:
                self._check_alive()
                with contextlib.suppress(OSError, KeyError, ValueError):
                    if check():
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"monitoring chain not ready after {timeout} s: not yet {what!r}\n"
                                       f"{self._logs()}")
                time.sleep(0.2)

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        """Send alerts to Alertmanager as Prometheus would: POST /api/v2/alerts, a JSON list of
        {labels, annotations?, startsAt?, endsAt?, generatorURL?} (Alertmanager's OpenAPI `postableAlerts`).
        RuntimeError with Alertmanager's answer unless it is 200."""
        request = urllib.request.Request(self.alertmanager_url + "/api/v2/alerts", method="POST",
                                         data=json.dumps(alerts).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"Alertmanager refused the alerts: {error.code} {error.read()!r}") from error

    def query(self, promql: str) -> list[dict[str, Any]]:
        """Prometheus's instant query: the `data.result` vector, [{metric: {...}, value: [time, "value"]}]."""
        return list(self._prometheus_get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))["result"])

    # The processes.

    def _exporter_command(self, address: str) -> list[str]:
        # Settings metrics are some 300 series per scrape that the rule never reads.
        return [_required_binary("postgres_exporter"), f"--web.listen-address={address}",
                "--disable-settings-metrics"]

    def _alertmanager_command(self, address: str) -> list[str]:
        assert self.directory is not None
        config = self.directory / "alertmanager.yml"
        config.write_text(self._alertmanager_config())
        return [_required_binary("alertmanager"), f"--config.file={config}",
                f"--storage.path={self.directory / 'alertmanager'}", f"--web.listen-address={address}",
                f"--web.external-url=http://{address}",
                "--cluster.listen-address="]  # no gossip port: a lone Alertmanager needs none

    def _prometheus_command(self, address: str) -> list[str]:
        assert self.directory is not None
        rules = self.directory / "rules.yml"
        rules.write_text(json.dumps(self._rules(), indent=2))
        config = self.directory / "prometheus.yml"
        config.write_text(json.dumps(self._prometheus_config(rules), indent=2))
        return [_required_binary("prometheus"), f"--config.file={config}",
                f"--storage.tsdb.path={self.directory / 'prometheus'}", f"--web.listen-address={address}",
                f"--web.external-url=http://{address}"]  # generatorURL points here, not at the hostname

    def _prometheus_config(self, rules: Path) -> dict[str, Any]:
        exporter = urllib.parse.urlsplit(self.exporter_url).netloc
        alertmanager = urllib.parse.urlsplit(self.alertmanager_url).netloc
        return {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": "postgres", "static_configs": [{"targets": [exporter]}]}],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        }

    def _rules(self) -> dict[str, Any]:
        selector = f'state="idle in transaction",datname={json.dumps(self.database)}'
        return {"groups": [{"name": "postgres", "rules": [{
            "alert": ALERT_NAME,
            "expr": f"sum by (datname) (pg_stat_activity_count{{{selector}}}) >= {self.idle_threshold}",
            "labels": {"severity": "critical", "team": "db"},
            "annotations": {
                "summary": "{{ $value }} connections idle in transaction on {{ $labels.datname }}",
                "description": (f"At least {self.idle_threshold} sessions of database {{{{ $labels.datname }}}} "
                                "hold a transaction open and do nothing: a connection leak. They keep locks "
                                "and snapshots, and the pool runs dry."),
                "runbook_url": "https://runbooks.example.com/postgres/idle-in-transaction",
            },
        }]}]}

    def _alertmanager_config(self) -> str:
        webhook: dict[str, Any] = {"url": self.webhook_url, "send_resolved": True}
        if self.bearer_token is not None:
            webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials": self.bearer_token}}
        route = textwrap.indent(textwrap.dedent(self.extra_route).strip(), "  ")
        return (
            "route:\n"
            '  receiver: "webhook"\n'
            "  group_by: [alertname]\n"
            "  group_wait: 1s\n"
            "  group_interval: 1s\n"
            "  repeat_interval: 1h\n"
            f"{route}\n"
            "receivers:\n"
            f"  - name: webhook\n    webhook_configs: [{json.dumps(webhook)}]\n"
        )

    def _start(self, name: str, command: Callable[[str], list[str]], ready_path: str,
               env: dict[str, str] | None = None) -> str:
        """Start `name` on a free loopback port and return its base URL once `ready_path` answers 200.

        The port is picked by binding port 0 and closing it, so another process may take it before ours binds:
        such a start is seen (the port's listening socket is not ours, or the process exits) and retried."""
        assert self.directory is not None
        for attempt in range(1, START_ATTEMPTS + 1):
            port = _free_port()
            address = f"127.0.0.1:{port}"
            log = self.directory / f"{name}.log"
            with log.open("ab") as output:
                output.write(f"--- attempt {attempt} on {address}\n".encode())
                output.flush()
                process = subprocess.Popen(command(address), cwd=self.directory, stdout=output,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           env={**os.environ, **(env or {})}, start_new_session=True)
            self._processes[name] = process
            url = f"http://{address}"
            try:
                outcome = _wait_listening(process, port, url + ready_path, timeout=30)
            except TimeoutError as error:
                raise RuntimeError(f"{name}: {error}\n{self._logs()}") from error
            if outcome == "ready":
                return url
            _stop(process)
            del self._processes[name]
            this_attempt = log.read_text(errors="replace").split(f"--- attempt {attempt} on {address}\n")[-1]
            if outcome == "exited" and "address already in use" not in this_attempt:
                # Not the port: a bad config or flag, which no retry mends.
                raise RuntimeError(f"{name} exited with {process.returncode}\n{self._logs()}")
        raise RuntimeError(f"{name} did not start in {START_ATTEMPTS} attempts\n{self._logs()}")

    def _check_alive(self) -> None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}\n{self._logs()}")

    def _prometheus_get(self, path: str) -> Any:
        with urllib.request.urlopen(self.prometheus_url + path, timeout=5) as response:
            return json.loads(response.read())["data"]

    def _logs(self, lines: int = 15) -> str:
        """The last lines of each process's log, for an error message."""
        if self.directory is None:
            return ""
        return "\n".join(f"{log.name}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
                         for log in sorted(self.directory.glob("*.log")))


class Leak:
    """A connection leak as a deploy makes one: `connections` psycopg sessions to `dsn`, each `BEGIN; SELECT 1`
    and then idle in transaction until the context is left (or `close()`), when they are closed.

    `dsn` is a libpq URL (`postgresql+psycopg://` accepted). The sessions show in pg_stat_activity with
    application_name "monitoring-chain-leak"; the server ends them by itself after 5 minutes idle
    (idle_in_transaction_session_timeout), should the test process die without closing them.
    `opened_at` is the time.monotonic() at which the last session went idle in transaction.
    """

    def __init__(self, dsn: str, connections: int = 8) -> None:
        self.dsn = _libpq_url(dsn)
        self.connections = connections
        self.opened_at: float | None = None
        self._sessions: list[psycopg.Connection[Any]] = []

    def __enter__(self) -> Leak:
        try:
            for _ in range(self.connections):
                session = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5, application_name=LEAK_APP,
                                          options="-c idle_in_transaction_session_timeout=300000")
                self._sessions.append(session)
                session.execute("BEGIN")
                session.execute("SELECT 1")
        except BaseException:
            self.close()
            raise
        self.opened_at = time.monotonic()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close every session (the server rolls their transactions back). Idempotent."""
        for session in self._sessions:
            with contextlib.suppress(psycopg.Error):
                session.close()
        self._sessions.clear()


def _binary(name: str) -> str | None:
    return next((path for candidate in BINARIES[name] if (path := shutil.which(candidate))), None)


def _required_binary(name: str) -> str:
    path = _binary(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed")
    return path


def _libpq_url(dsn: str) -> str:
    return dsn.replace("postgresql+psycopg://", "postgresql://", 1)


def _database_name(dsn: str) -> str:
    """The database a `postgresql://` URL names; libpq's default is the user's name, then "postgres"."""
    parts = urllib.parse.urlsplit(_libpq_url(dsn))
    return urllib.parse.unquote(parts.path.lstrip("/")) or urllib.parse.unquote(parts.username or "postgres")


def _exporter_dsn(dsn: str) -> str:
    """The DSN for the exporter's lib/pq, which defaults to sslmode=require, which a loopback server without
    TLS refuses ("pq: SSL is not enabled on the server")."""
    url = _libpq_url(dsn)
    if "sslmode=" in url:
        return url
    return url + ("&" if "?" in url else "?") + "sslmode=disable"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_listening(process: subprocess.Popen[bytes], port: int, ready_url: str,
                    timeout: float) -> Literal["ready", "taken", "exited"]:
    """"ready" once `process` itself listens on 127.0.0.1:`port` and `ready_url` answers 200, "taken" when
    another process listens there, "exited" when it exits (as a port taken first makes it do). TimeoutError
    after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return "exited"
        owner = _listener_owned_by(process.pid, port)
        if owner is False:
            return "taken"
        if owner:
            with contextlib.suppress(OSError), urllib.request.urlopen(ready_url, timeout=2) as response:
                if response.status == 200:
                    return "ready"
        time.sleep(0.1)
    raise TimeoutError(f"no answer from {ready_url} within {timeout} s")


def _listener_owned_by(pid: int, port: int) -> bool | None:
    """Whether the socket listening on 127.0.0.1:`port` belongs to `pid` (Linux /proc/net/tcp); None while no
    socket listens there. This tells our process from another that took the port before it, even when the other
    is a Prometheus of another test answering the same readiness URL."""
    wanted = f"0100007F:{port:04X}"
    inode = None
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if fields[1] == wanted and fields[3] == "0A":  # 0A: TCP_LISTEN
                inode = fields[9]
    if inode is None:
        return None
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return True
    return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's own session, SIGKILL after 5 s; it is reaped either way."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
