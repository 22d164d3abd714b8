#!/usr/bin/env bash
# Stop the workers deploy/up.sh started and remove its nginx site (same knobs as up.sh).
set -euo pipefail
SITE="${SITE:-shuxiang}"
RUN_DIR="${RUN_DIR:-/run/shuxiang}"
if [ -z "${USE_SYSTEMD:-}" ]; then
    if [ -d /run/systemd/system ]; then USE_SYSTEMD=1; else USE_SYSTEMD=0; fi
fi
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if [ "$USE_SYSTEMD" = 1 ]; then
    for unit in $(systemctl list-units --plain --no-legend 'shuxiang@*.service' | awk '{print $1}'); do
        as_root systemctl disable --now "$unit"
    done
else
    for pidfile in "$RUN_DIR"/worker-*.pid; do
        [ -e "$pidfile" ] || continue
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for _ in $(seq 225); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
        rm -f "$pidfile"
    done
fi
as_root rm -f "/etc/nginx/sites-enabled/$SITE" "/etc/nginx/sites-available/$SITE"
if as_root nginx -t -q 2>/dev/null; then
    if [ "$USE_SYSTEMD" = 1 ]; then as_root systemctl reload nginx; else as_root nginx -s reload 2>/dev/null || true; fi
fi
echo "[down] workers stopped, nginx site $SITE removed"
