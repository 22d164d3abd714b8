#!/usr/bin/env bash
# Bring Shuxiang up on this machine as N webhook workers behind nginx, on Debian's packages
# (nginx, redis-server, postgresql). Idempotent: run it again to change N, to restart the
# workers after an upgrade, or after a reboot on a machine without systemd.
#
#   SHUXIANG_BOT_TOKEN=123:ABC SHUXIANG_WEBHOOK_URL=https://library.example.edu/telegram \
#     sudo -E deploy/up.sh
#
# Knobs (environment; defaults in brackets):
#   WORKERS [cores - 1, 2 to 4]  webhook workers, on ports BASE_PORT, BASE_PORT+1, ...
#   BASE_PORT [8081]       first worker's port (127.0.0.1 only)
#   NGINX_LISTEN [443 ssl] what nginx listens on; "8080" for plain HTTP behind another proxy
#   TLS_CERT, TLS_KEY      certificate and key for "443 ssl" (e.g. certbot's fullchain/privkey)
#   SERVER_NAME [_]        nginx server_name
#   SITE [shuxiang]        the nginx site's name (and its upstream's)
#   CONF_DIR [/etc/shuxiang]   the env file (secrets: mode 600)
#   STATE_DIR [/var/lib/shuxiang]  workers' working folder (search cache)
#   RUN_DIR [/run/shuxiang], LOG_DIR [/var/log/shuxiang]  pid files and logs without systemd
#   APP_CMD [shuxiang]  the command (e.g. "/opt/shuxiang/.venv/bin/shuxiang")
#   RUN_AS [shuxiang under systemd, else the caller]  the workers' user
#   USE_SYSTEMD [auto]     1: install shuxiang@.service units; 0: start workers with setsid
# Every SHUXIANG_* variable in the environment is written into the env file on the first run
# and overrides it on later runs.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# One worker per core, PostgreSQL keeping one; two at least (a worker's death is no outage),
# four at most (20 PostgreSQL connections each, within the server's default max_connections).
cores="$(nproc)"
WORKERS="${WORKERS:-$((cores <= 3 ? 2 : cores > 5 ? 4 : cores - 1))}"
BASE_PORT="${BASE_PORT:-8081}"
NGINX_LISTEN="${NGINX_LISTEN:-443 ssl}"
SERVER_NAME="${SERVER_NAME:-_}"
SITE="${SITE:-shuxiang}"
CONF_DIR="${CONF_DIR:-/etc/shuxiang}"
STATE_DIR="${STATE_DIR:-/var/lib/shuxiang}"
RUN_DIR="${RUN_DIR:-/run/shuxiang}"
LOG_DIR="${LOG_DIR:-/var/log/shuxiang}"
APP_CMD="${APP_CMD:-shuxiang}"
ENV_FILE="$CONF_DIR/env"
if [ -z "${USE_SYSTEMD:-}" ]; then
    if [ -d /run/systemd/system ]; then USE_SYSTEMD=1; else USE_SYSTEMD=0; fi
fi
say() { printf '[up] %s\n' "$*"; }
die() { printf '[up] %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# -- 1. Debian's packages -----------------------------------------------------------------------
missing=()
for pkg in nginx redis-server postgresql; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    as_root apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
        "${missing[@]}" >/dev/null
fi

start_service() {  # name, check command...
    local name="$1"; shift
    "$@" >/dev/null 2>&1 && return 0
    say "starting $name"
    if [ "$USE_SYSTEMD" = 1 ]; then as_root systemctl enable --now "$name"; else as_root service "$name" start; fi
    for _ in $(seq 50); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
    die "$name does not answer"
}
start_service postgresql pg_isready -h 127.0.0.1 -q
start_service redis-server redis-cli -h 127.0.0.1 ping

# -- 2. the env file: database, Redis, webhook secret -------------------------------------------
as_root mkdir -p "$CONF_DIR" "$STATE_DIR"
given="$(export -p | grep -E '^declare -x SHUXIANG_' || true)"
if ! as_root test -f "$ENV_FILE"; then
    [ -n "${SHUXIANG_BOT_TOKEN:-}" ] || die "SHUXIANG_BOT_TOKEN is needed on the first run"
    [ -n "${SHUXIANG_WEBHOOK_URL:-}" ] || die "SHUXIANG_WEBHOOK_URL (https://…/telegram) is needed on the first run"
    if [ -z "${SHUXIANG_DATABASE_URL:-}" ]; then
        password="$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)"
        say "creating PostgreSQL role and database shuxiang"
        psql_admin() {
            if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
                runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qAt "$@"
            else
                psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -qAt "$@"
            fi
        }
        if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = 'shuxiang'")" = 1 ]; then
            psql_admin -c "ALTER ROLE shuxiang LOGIN PASSWORD '$password'"
        else
            psql_admin -c "CREATE ROLE shuxiang LOGIN PASSWORD '$password'"
        fi
        if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'shuxiang'")" != 1 ]; then
            psql_admin -c "CREATE DATABASE shuxiang OWNER shuxiang ENCODING 'UTF8' TEMPLATE template0"
        fi
        SHUXIANG_DATABASE_URL="postgresql://shuxiang:$password@127.0.0.1:5432/shuxiang"
    fi
    secret="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    umask 077
    {
        # Double quotes: read alike by systemd's EnvironmentFile= and by this script.
        echo "SHUXIANG_BOT_TOKEN=\"$SHUXIANG_BOT_TOKEN\""
        echo "SHUXIANG_DATABASE_URL=\"$SHUXIANG_DATABASE_URL\""
        echo "SHUXIANG_REDIS_URL=\"${SHUXIANG_REDIS_URL:-redis://127.0.0.1:6379/0}\""
        echo "SHUXIANG_WEBHOOK_URL=\"$SHUXIANG_WEBHOOK_URL\""
        echo "SHUXIANG_WEBHOOK_SECRET=\"${SHUXIANG_WEBHOOK_SECRET:-$secret}\""
        echo "SHUXIANG_DATA_DIR=\"$STATE_DIR\""
        # Anything else given now (SHUXIANG_BOT_API_URL, SHUXIANG_PROXY, ...).
        export -p | sed -n 's/^declare -x \(SHUXIANG_[A-Z0-9_]*\)=\(".*"\)$/\1=\2/p' \
            | grep -vE '^SHUXIANG_(BOT_TOKEN|DATABASE_URL|REDIS_URL|WEBHOOK_URL|WEBHOOK_SECRET|DATA_DIR)=' || true
    } | as_root tee "$ENV_FILE" >/dev/null
    say "wrote $ENV_FILE"
fi
set -a
# shellcheck disable=SC1090
. <(as_root cat "$ENV_FILE")
set +a
eval "$given"  # what the caller gave overrides the file
webhook_path="/${SHUXIANG_WEBHOOK_URL#*://*/}"
[ "$webhook_path" != "/$SHUXIANG_WEBHOOK_URL" ] || webhook_path="/telegram"
export SHUXIANG_WEBHOOK_PATH="${SHUXIANG_WEBHOOK_PATH:-$webhook_path}"

# -- 3. the schema, once, before any worker ------------------------------------------------------
read -r -a cmd <<<"$APP_CMD"
say "bringing the database schema up to date"
(cd "$STATE_DIR" && "${cmd[@]}" db upgrade >/dev/null)

# -- 4. nginx ------------------------------------------------------------------------------------
servers=""
for ((i = 0; i < WORKERS; i++)); do
    servers+="    server 127.0.0.1:$((BASE_PORT + i)) max_fails=1 fail_timeout=5s;"$'\n'
done
tls=""
if [[ "$NGINX_LISTEN" == *ssl* ]]; then
    [ -n "${TLS_CERT:-}" ] && [ -n "${TLS_KEY:-}" ] \
        || die "NGINX_LISTEN=$NGINX_LISTEN needs TLS_CERT and TLS_KEY (or NGINX_LISTEN=8080 behind another TLS proxy)"
    tls="    ssl_certificate $TLS_CERT;"$'\n'"    ssl_certificate_key $TLS_KEY;"
fi
site="$(python3 - "$here/nginx-site.conf.in" <<PY
import sys
text = open(sys.argv[1], encoding="utf-8").read()
for key, value in {
    "@WORKERS@": "$WORKERS", "@UPSTREAM@": "${SITE//-/_}_workers", "@SERVERS@": """$servers""".rstrip("\n"),
    "@LISTEN@": "$NGINX_LISTEN", "@SERVER_NAME@": "$SERVER_NAME", "@TLS@": """$tls""",
    "@PATH@": "$SHUXIANG_WEBHOOK_PATH",
}.items():
    text = text.replace(key, value)
print(text, end="")
PY
)"
printf '%s\n' "$site" | as_root tee "/etc/nginx/sites-available/$SITE" >/dev/null
as_root ln -sf "/etc/nginx/sites-available/$SITE" "/etc/nginx/sites-enabled/$SITE"
as_root nginx -t -q
if [ "$USE_SYSTEMD" = 1 ]; then
    as_root systemctl enable --now nginx >/dev/null
    as_root systemctl reload nginx
elif [ -s /run/nginx.pid ] && as_root kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    as_root nginx -s reload
else
    as_root nginx
fi
say "nginx site $SITE: $NGINX_LISTEN → $WORKERS workers from port $BASE_PORT"

wait_healthy() {  # a worker answers /healthz (503 is an answer: `shuxiang health` says why)
    local code
    for _ in $(seq 600); do
        code="$(python3 -c 'import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)
except OSError:
    print(0)' "http://127.0.0.1:$1/healthz")"
        if [ "$code" = 200 ] || [ "$code" = 503 ]; then return 0; fi
        sleep 0.2
    done
    die "the worker on port $1 did not start (see its log)"
}

# -- 5. the workers ------------------------------------------------------------------------------
if [ "$USE_SYSTEMD" = 1 ]; then
    RUN_AS="${RUN_AS:-shuxiang}"
    id "$RUN_AS" >/dev/null 2>&1 || as_root useradd --system --home "$STATE_DIR" --shell /usr/sbin/nologin "$RUN_AS"
    as_root chown -R "$RUN_AS" "$STATE_DIR"
    as_root chgrp "$RUN_AS" "$ENV_FILE" && as_root chmod 640 "$ENV_FILE"
    sed -e "s|@COMMAND@|$APP_CMD|" -e "s|@USER@|$RUN_AS|" -e "s|@ENV_FILE@|$ENV_FILE|" \
        -e "s|@STATE_DIR@|$STATE_DIR|" "$here/shuxiang@.service" \
        | as_root tee /etc/systemd/system/shuxiang@.service >/dev/null
    as_root systemctl daemon-reload
    for unit in $(systemctl list-units --plain --no-legend 'shuxiang@*.service' | awk '{print $1}'); do
        port="${unit#shuxiang@}"; port="${port%.service}"
        if [ "$port" -lt "$BASE_PORT" ] || [ "$port" -ge $((BASE_PORT + WORKERS)) ]; then
            as_root systemctl disable --now "$unit"
        fi
    done
    for ((i = 0; i < WORKERS; i++)); do
        as_root systemctl enable "shuxiang@$((BASE_PORT + i))" >/dev/null 2>&1
        as_root systemctl restart "shuxiang@$((BASE_PORT + i))"
    done
else
    as_root mkdir -p "$RUN_DIR" "$LOG_DIR"
    stop_worker() {  # pid file: SIGTERM lets the updates in flight finish
        local pid
        pid="$(cat "$1" 2>/dev/null || true)"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            for _ in $(seq 225); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        fi
        rm -f "$1"
    }
    # One worker at a time (a rolling restart): nginx sends updates to the others meanwhile.
    for ((i = 0; i < WORKERS; i++)); do
        port=$((BASE_PORT + i))
        stop_worker "$RUN_DIR/worker-$port.pid"
        if python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null; then
            die "port $port is taken by a process up.sh did not start: stop it or set BASE_PORT"
        fi
        # The pid file holds the worker's own pid (setsid execs it, no shell in between).
        (cd "$STATE_DIR" || exit 1
         setsid "${cmd[@]}" run --webhook --listen "127.0.0.1:$port" \
            >>"$LOG_DIR/worker-$port.log" 2>&1 </dev/null &
         echo $! >"$RUN_DIR/worker-$port.pid")
        wait_healthy "$port"
    done
    for pidfile in "$RUN_DIR"/worker-*.pid; do  # fewer workers than before
        [ -e "$pidfile" ] || continue
        port="${pidfile##*/worker-}"; port="${port%.pid}"
        if [ "$port" -lt "$BASE_PORT" ] || [ "$port" -ge $((BASE_PORT + WORKERS)) ]; then
            stop_worker "$pidfile"
        fi
    done
fi

# -- 6. every worker answers its health check ------------------------------------------------------
for ((i = 0; i < WORKERS; i++)); do
    wait_healthy $((BASE_PORT + i))
done
say "$WORKERS workers up; \`shuxiang health\` (with $ENV_FILE) checks the whole deployment"
