# Kassa: web (gunicorn), worker, migrations, the sandbox and tools from one image.
# What each role is: docker/entrypoint.sh; how to run them: docs/deploy.md.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r requirements.txt

FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_ENV=production \
    FLASK_APP=wsgi
RUN groupadd --system --gid 1001 kassa \
 && useradd --system --uid 1001 --gid kassa --home-dir /app --shell /usr/sbin/nologin kassa
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=kassa:kassa app ./app
COPY --chown=kassa:kassa templates ./templates
COPY --chown=kassa:kassa static ./static
COPY --chown=kassa:kassa migrations ./migrations
COPY --chown=kassa:kassa wsgi.py gunicorn.conf.py docker/entrypoint.sh ./
RUN mkdir -p /app/instance && chown kassa:kassa /app/instance
USER kassa
EXPOSE 8000
# Liveness of a web container (the role is read from PID 1); compose asks web for /readyz.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s CMD ["./entrypoint.sh", "healthcheck"]
ENTRYPOINT ["./entrypoint.sh"]
CMD ["web"]
