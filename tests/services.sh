#!/usr/bin/env bash
# What the tests use, installed and started when missing, on a Debian machine with Node/npm:
# PostgreSQL 15 and Redis 7 on 127.0.0.1, poppler-utils (pdftotext, the reference extractor of
# the course tests; pdftoppm, which renders the PDFs Troupe writes for the glyph checks) and the
# ChromaDB test server (npm, tests/tools/chroma), and Debian's prometheus (/usr/bin/prometheus and
# /usr/bin/promtool: tests/prometheus_test.ts scrapes /metrics and checks the alert rules; the
# package's own service is not started), and Debian's chromium (routes/console's browser test,
# driven by playwright-core).
# Idempotent: a machine that has everything running is left as it is.
set -uo pipefail
cd "$(dirname "$0")/.."

log() { printf '[services] %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq >&2 || log "WARNING: apt-get update failed"
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 \
    || log "WARNING: apt-get install $* failed"
}

if ! command -v pdftotext >/dev/null 2>&1 || ! command -v pdftoppm >/dev/null 2>&1; then
  log "installing poppler-utils (pdftotext, pdftoppm)"
  apt_install poppler-utils
fi

if [ ! -x /usr/bin/prometheus ] || [ ! -x /usr/bin/promtool ]; then
  log "installing prometheus (prometheus, promtool)"
  apt_install prometheus
fi

if [ ! -x /usr/bin/chromium ]; then
  log "installing chromium (the console's browser tests)"
  apt_install chromium
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    log "installing postgresql"
    apt_install postgresql
  fi
  log "starting postgresql"
  for v in $(ls /etc/postgresql 2>/dev/null); do
    pg_ctlcluster --skip-systemctl-redirect "$v" main start >&2 || true
  done
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -q -h 127.0.0.1 -p 5432 || log "WARNING: postgresql is not answering"

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if ! command -v redis-server >/dev/null 2>&1; then
    log "installing redis"
    apt_install redis-server
  fi
  log "starting redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log >&2 || true
  for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi

if [ ! -x tests/tools/chroma/node_modules/.bin/chroma ]; then
  log "installing the chroma test server"
  npm install --prefix tests/tools/chroma --no-audit --no-fund --loglevel=error >&2 \
    || log "WARNING: chroma install failed; the vector tests will try again"
fi
exit 0
