#!/usr/bin/env bash
# CI's Docker smoke test: build the image, start the sandbox profile, sell one QR through the
# emulated bank, check it is paid, and remove everything. Without a Docker engine it says so
# in one line and succeeds: tests/test_docker.py checks the compose file and the Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
  echo "no Docker engine: compose and Dockerfile checked by tests/test_docker.py"
  exit 0
fi

# A project of its own, so an operator's stack on this machine is never touched.
compose=(docker compose --project-name kassa-smoke --profile sandbox)
cleanup() { "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "== docker: build and start the sandbox profile"
"${compose[@]}" build
"${compose[@]}" up -d

echo "== docker: waiting for web's /readyz"
ready=""
for _ in $(seq 1 90); do
  if "${compose[@]}" exec -T sandbox-web python -c \
      "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2)" \
      >/dev/null 2>&1; then
    ready=yes; break
  fi
  sleep 2
done
if [ -z "$ready" ]; then
  "${compose[@]}" ps; "${compose[@]}" logs --tail=50
  echo "web never became ready" >&2; exit 1
fi

echo "== docker: a QR of 100 RUB, paid through the sandbox"
qr_json=$("${compose[@]}" exec -T sandbox-web flask qr create --type dynamic --amount 100)
qr_id=$(printf '%s' "$qr_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["qr_id"])')
"${compose[@]}" exec -T sandbox-web python -c "
import urllib.request
request = urllib.request.Request('http://sandbox:8081/sandbox/qrs/$qr_id/pay', method='POST',
    data=b'{\"status\": \"SUCCESS\"}', headers={'Content-Type': 'application/json'})
urllib.request.urlopen(request, timeout=10)"

for _ in $(seq 1 30); do
  status=$("${compose[@]}" exec -T sandbox-web flask qr show "$qr_id" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  if [ "$status" = "paid" ]; then
    echo "docker smoke: QR $qr_id paid"
    exit 0
  fi
  sleep 1
done
"${compose[@]}" logs --tail=50 sandbox sandbox-web sandbox-worker
echo "docker smoke: QR $qr_id still $status after 30 s" >&2
exit 1
