#!/bin/sh
# web: migrate (retrying while the database starts), then exec gunicorn.
# worker: exec the job worker. Anything else runs as a flask command.
set -e
case "${1:-web}" in
  web)
    tries=0
    until flask db upgrade; do
      # 4: the configuration is refused (wsgi.py); waiting will not change it.
      status=$?
      [ "$status" -eq 4 ] && exit 4
      tries=$((tries + 1))
      [ "$tries" -ge 30 ] && { echo "database not reachable; giving up" >&2; exit 1; }
      echo "migration failed; retrying in 2 s" >&2
      sleep 2
    done
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
  *)
    exec flask "$@"
    ;;
esac
