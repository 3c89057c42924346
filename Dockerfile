# Kassa: web (gunicorn), worker and tools from one image.
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
HEALTHCHECK --interval=30s --timeout=3s \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
ENTRYPOINT ["./entrypoint.sh"]
CMD ["web"]
