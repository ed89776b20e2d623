#!/usr/bin/env bash
# N Latent Lab replicas on one shared folder, behind HAProxy with sticky sessions (deploy/README.md).
#
#   deploy/replicas.sh N          # from anywhere; Ctrl-C (or SIGTERM) stops the replicas and the proxy
#
# A replica that stops (a crash, the kernel's OOM killer) is started again after 2 s; meanwhile HAProxy
# sends its students to the others (their pages reconnect: same identity, same model, same page). One that
# stops within 30 s of its start three times in a row is broken: then everything stops, with the log's name.
#
# Environment (all optional):
#   LATENT_LAB_HOME           the shared folder: models, and the cache below (default ~/.local/share/latent-lab)
#   LATENT_LAB_CACHE          the shared cache: maps, the training queue, few-labels results (default $LATENT_LAB_HOME/cache)
#   LATENT_LAB_PROXY_PORT     where the students connect (default 8501)
#   LATENT_LAB_REPLICA_PORT   the first replica's port; the others follow (default 8601)
#   LATENT_LAB_PROXY=0        start the replicas only, listening on 0.0.0.0 (a machine behind a proxy elsewhere)
#   PYTHON, HAPROXY           the interpreter (default .venv/bin/python) and haproxy (default: the one on PATH)
# The teacher secret, the caps and LATENT_LAB_RAY_ADDRESS pass to every replica from this environment.
set -euo pipefail

n="${1:-}"
if ! [[ "$n" =~ ^[1-9][0-9]?$ ]]; then
    echo "usage: deploy/replicas.sh N   (N replicas, 1 to 99)" >&2
    exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Folders named relative to where the script was started, made absolute before it moves to the repository.
LATENT_LAB_HOME="$(realpath -m "${LATENT_LAB_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/latent-lab}")"
[ -z "${LATENT_LAB_CACHE:-}" ] || LATENT_LAB_CACHE="$(realpath -m "$LATENT_LAB_CACHE")"
cd "$root"
python="${PYTHON:-$root/.venv/bin/python}"
haproxy="${HAPROXY:-haproxy}"
proxy="${LATENT_LAB_PROXY:-1}"
proxy_port="${LATENT_LAB_PROXY_PORT:-8501}"
first="${LATENT_LAB_REPLICA_PORT:-8601}"
if [ "$proxy" = 0 ]; then address=0.0.0.0; else address=127.0.0.1; fi
if [ "$proxy" != 0 ] && ! command -v "$haproxy" >/dev/null; then
    echo "HAProxy is not installed here: apt-get install haproxy (or set HAPROXY, or LATENT_LAB_PROXY=0)." >&2
    exit 1
fi

export LATENT_LAB_HOME
export LATENT_LAB_CACHE="${LATENT_LAB_CACHE:-$LATENT_LAB_HOME/cache}"
mkdir -p "$LATENT_LAB_HOME" "$LATENT_LAB_CACHE"
# One cookie secret for every replica (Streamlit signs its login cookies with it), made once, kept private.
secret_file="$LATENT_LAB_HOME/.cookie-secret"
if [ ! -s "$secret_file" ]; then
    (umask 077 && "$python" -c 'import secrets; print(secrets.token_hex(32))' > "$secret_file.tmp" \
        && mv "$secret_file.tmp" "$secret_file")
fi
STREAMLIT_SERVER_COOKIE_SECRET="$(cat "$secret_file")"
export STREAMLIT_SERVER_COOKIE_SECRET

run="$LATENT_LAB_CACHE/replicas-$(hostname)-$proxy_port"  # this machine's proxy config and logs
mkdir -p "$run"
pids=()
stop() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap stop EXIT
trap 'exit 0' INT TERM

if [ "$proxy" != 0 ]; then
    cfg="$run/haproxy.cfg"
    sed -e "s/^\([[:space:]]*bind[[:space:]]\+\):8501\b/\1:$proxy_port/" -e '/# servers:/q' deploy/haproxy.cfg > "$cfg"
    for i in $(seq 1 "$n"); do
        echo "    server r$i 127.0.0.1:$((first + i - 1)) cookie r$i" >> "$cfg"
    done
    "$haproxy" -c -q -f "$cfg"
fi
supervise() {  # replica $1, started again whenever it stops
    local i="$1" child="" quick=0 started rc
    trap '[ -z "$child" ] || kill "$child" 2>/dev/null; wait 2>/dev/null; exit 0' TERM
    : > "$run/replica-$i.log"
    while true; do
        started=$SECONDS
        "$python" -m streamlit run app.py --server.port "$((first + i - 1))" --server.address "$address" \
            --server.headless true >> "$run/replica-$i.log" 2>&1 &
        child=$!
        wait "$child" && rc=0 || rc=$?
        if [ $((SECONDS - started)) -lt 30 ]; then quick=$((quick + 1)); else quick=0; fi
        if [ "$quick" -ge 3 ]; then
            echo "Replica $i stopped three times within 30 s of starting (exit $rc); see $run/replica-$i.log." >&2
            exit 1
        fi
        echo "$(date '+%F %T') replica $i stopped (exit $rc); starting it again in 2 s" | tee -a "$run/replica-$i.log" >&2
        sleep 2
    done
}
for i in $(seq 1 "$n"); do
    supervise "$i" &
    pids+=("$!")
done
# The proxy starts once every replica answers (a first start imports torch: seconds), so nobody meets a half-up class.
ports="$(seq -s ' ' "$first" "$((first + n - 1))")"
if ! "$python" - "$ports" <<'PY'
import sys, time, urllib.request
ports, deadline = sys.argv[1].split(), time.time() + 120
while ports and time.time() < deadline:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/_stcore/health", timeout=2)
        ports.pop(0)
    except OSError:
        time.sleep(0.5)
sys.exit(1 if ports else 0)
PY
then
    echo "A replica did not answer within 120 s; see $run/replica-*.log." >&2
    exit 1
fi
if [ "$proxy" != 0 ]; then
    "$haproxy" -db -f "$cfg" > "$run/haproxy.log" 2>&1 &
    pids+=("$!")
    echo "Latent Lab: $n replicas behind http://$(hostname):$proxy_port/ (shared folder $LATENT_LAB_HOME; logs in $run)"
else
    echo "Latent Lab: $n replicas on ports $first-$((first + n - 1)) of $(hostname) (logs in $run)"
fi
set +e
wait -n "${pids[@]}"
echo "The proxy stopped, or a replica would not stay up (see the logs in $run); stopping the rest." >&2
exit 1
