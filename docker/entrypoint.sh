#!/bin/sh
# The image's entry point; the first argument says what this container is
# (docker-compose.yml and docs/deploy.md use each of them):
#   migrate [FLASK ARGS]  `flask db upgrade`, retried while the database starts
#                         (MIGRATE_TRIES, 30; MIGRATE_RETRY_SECONDS, 2), then, if given,
#                         one more flask command (e.g. `migrate demo seed`)
#   web                   gunicorn on $PORT (8000), $WEB_CONCURRENCY workers (2). It does not
#                         migrate: the one-shot `migrate` service does, so several web
#                         containers never race a migration.
#   worker                the job worker
#   sandbox               the bank and cash-register emulator on 0.0.0.0:$SANDBOX_PORT (8081),
#                         for trying Kassa offline; never with production settings
#   healthcheck           the image's HEALTHCHECK: a web container answers /healthz
#   anything else         a flask command: `docker compose run --rm web doctor`
set -e

# `flask` exits with 4 when the configuration is refused (wsgi.py): retrying will not help.
CONFIG_REFUSED=4

migrate() {
  tries=0
  until flask db upgrade; do
    status=$?
    if [ "$status" -eq "$CONFIG_REFUSED" ]; then
      echo "migration not run: the configuration is refused (see above)" >&2
      exit "$CONFIG_REFUSED"
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge "${MIGRATE_TRIES:-30}" ]; then
      echo "migration failed $tries times (is the database reachable? DATABASE_URL); giving up" >&2
      exit 1
    fi
    echo "migration failed (the database may still be starting); retrying in ${MIGRATE_RETRY_SECONDS:-2} s" >&2
    sleep "${MIGRATE_RETRY_SECONDS:-2}"
  done
}

role="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$role" in
  migrate)
    migrate
    if [ "$#" -gt 0 ]; then
      exec flask "$@"
    fi
    ;;
  web)
    # FORWARDED_ALLOW_IPS: the proxies whose X-Forwarded-* headers gunicorn believes.
    # With JSON logs (LOG_FORMAT, json in production) Kassa writes one line per request
    # itself; gunicorn's plain access log would only repeat it in another shape.
    format="${LOG_FORMAT:-$([ "${APP_ENV:-production}" = production ] && echo json || echo plain)}"
    access_log=""
    [ "$format" = plain ] && access_log="--access-logfile -"
    # gunicorn.conf.py (read from /app) keeps PROMETHEUS_MULTIPROC_DIR's books.
    exec gunicorn --bind "0.0.0.0:${PORT:-8000}" --workers "${WEB_CONCURRENCY:-2}" \
      $access_log --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" wsgi:app
    ;;
  worker)
    exec flask worker
    ;;
  sandbox)
    exec flask sandbox run --host 0.0.0.0
    ;;
  healthcheck)
    # Only a web container has an HTTP port to ask; another role is healthy while it runs.
    case "$(tr '\0' ' ' < /proc/1/cmdline 2>/dev/null)" in
      *gunicorn*)
        exec python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${PORT:-8000}/healthz', timeout=2)"
        ;;
    esac
    exit 0
    ;;
  *)
    exec flask "$role" "$@"
    ;;
esac
