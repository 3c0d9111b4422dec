# A small image that runs `incident-bot serve` (HTTP mode, port 3000) as a non-root user.
#
#   docker build -t incident-bot .
#   docker run -e SLACK_BOT_TOKEN -e SLACK_SIGNING_SECRET -e DATABASE_URL \
#     -v "$PWD/incident-bot.toml:/app/incident-bot.toml:ro" -p 3000:3000 incident-bot
#
# The configuration file is read from /app/incident-bot.toml (the working directory) when it is there;
# set INCIDENT_BOT_CONFIG to make it required. Without DATABASE_URL the store is SQLite in /app, inside
# the container: fine for a try, lost with the container. docker-compose.yml runs it on PostgreSQL.
# Socket Mode: `docker run … incident-bot serve --socket-mode` with SLACK_APP_TOKEN; /healthz,
# /metrics and PagerDuty's webhooks are still served on port 3000 (see docs/operations.md).

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot bot
COPY handlers handlers
COPY storage storage
COPY simulators simulators
# The bot and every dependency as wheels; the package data (Alembic migrations, the postmortem
# template) travels inside the bot's wheel (pyproject.toml, [tool.setuptools.package-data]).
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --home-dir /app --create-home --shell /usr/sbin/nologin incident-bot
COPY --from=build /wheels /wheels
# Installed from the wheels built above only: nothing is fetched at this stage.
RUN pip install --no-cache-dir --no-index --find-links=/wheels incident-bot && rm -rf /wheels
USER incident-bot
WORKDIR /app
EXPOSE 3000
# GET /healthz: 200 while the bot's own database answers, 503 otherwise. Assumes the default port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz', timeout=4).status == 200 else 1)"]
# SIGTERM (docker stop) finishes the work already acknowledged to Slack, then exits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["incident-bot"]
CMD ["serve", "--port", "3000"]
