#!/usr/bin/env bash
# Load-tests `grant serve` over HTTP with wrk, side by side with the Cerbos
# PDP on the same one-rule decision, and writes a markdown table to stdout
# and to benches/serve/results.md (soak: benches/serve/soak.md, or
# soak-scraped.md with SCRAPE_METRICS=1).
#
#   benches/serve/run.sh                   the five runs, DURATION each (15s)
#   benches/serve/run.sh --soak MINUTES    the memory run: a decide + grant load
#                                          for MINUTES, the server's RSS every 10 s
#   benches/serve/run.sh --install-cerbos  first npm-installs the Cerbos PDP into
#                                          target/serve-bench/npm (nothing else
#                                          is ever installed)
#   benches/serve/run.sh --no-cerbos       skips the Cerbos rows
#
# Environment: DURATION (wrk's -d, default 15s), CONNECTIONS (64), THREADS (1),
# TASKS (tasks opened for the grant runs, 256), CERBOS (the Cerbos binary),
# CERBOS_LOG_LEVEL (default info: Cerbos's own default, which logs every
# request), WARMUP (seconds of unrecorded load before each run, 3),
# SCRAPE_METRICS (soak: 1 to GET /metrics every 10 s, as Prometheus would;
# default 0, no scraper).
#
# Needs wrk, curl, python3 (to pick free ports) and cargo, and free disk:
# the grant runs write SQLite files under target/serve-bench (about 5 MB a
# second of grant load: 3 GB for a 10-minute soak), deleted on exit. Every process it
# starts is stopped on exit; every wait is bounded.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=benches/serve

soak=
install_cerbos=0
use_cerbos=1
while [ $# -gt 0 ]; do
    case "$1" in
        --soak) soak=${2:?--soak needs a number of minutes}; shift ;;
        --install-cerbos) install_cerbos=1 ;;
        --no-cerbos) use_cerbos=0 ;;
        *) echo "usage: benches/serve/run.sh [--soak MINUTES] [--install-cerbos] [--no-cerbos]" >&2; exit 2 ;;
    esac
    shift
done

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
TASKS=${TASKS:-256}
WARMUP=${WARMUP:-3}
CERBOS_LOG_LEVEL=${CERBOS_LOG_LEVEL:-info}
SCRAPE_METRICS=${SCRAPE_METRICS:-0}

# ----- tools -------------------------------------------------------------

if ! command -v wrk >/dev/null; then
    echo "error: wrk not found. Install it (Debian/Ubuntu: apt-get install -y wrk;" \
        "macOS: brew install wrk; or build https://github.com/wg/wrk) and run again." >&2
    exit 1
fi
for tool in curl python3 cargo; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 1; }
done

cache=target/serve-bench
npm_cerbos=$cache/npm/node_modules/@cerbos/cerbos-linux-x64/cerbos-linux-x64
cerbos=
if [ -z "$soak" ] && [ "$use_cerbos" = 1 ]; then
    if [ -n "${CERBOS:-}" ]; then
        cerbos=$CERBOS
    elif [ -x "$npm_cerbos" ]; then
        cerbos=$npm_cerbos
    elif command -v cerbos >/dev/null; then
        cerbos=$(command -v cerbos)
    elif [ "$install_cerbos" = 1 ]; then
        command -v npm >/dev/null || { echo "error: --install-cerbos needs npm" >&2; exit 1; }
        echo "installing the Cerbos PDP: npm install @cerbos/cerbos-linux-x64 into $cache/npm (about 100 MB)" >&2
        mkdir -p "$cache/npm"
        (cd "$cache/npm" && npm install --no-save --no-audit --no-fund @cerbos/cerbos-linux-x64 >&2)
        cerbos=$npm_cerbos
    else
        echo "error: the Cerbos PDP was not found. Either:" >&2
        echo "  benches/serve/run.sh --install-cerbos   (npm installs @cerbos/cerbos-linux-x64 into $cache/npm)" >&2
        echo "  CERBOS=/path/to/cerbos benches/serve/run.sh   (a cerbos binary: https://docs.cerbos.dev/cerbos/latest/installation/binary)" >&2
        echo "  benches/serve/run.sh --no-cerbos        (Grant's rows only)" >&2
        exit 1
    fi
    [ -x "$cerbos" ] || { echo "error: $cerbos is not an executable" >&2; exit 1; }
    case "$cerbos" in /*) ;; *) cerbos=$root/$cerbos ;; esac
fi

echo "building grant (cargo build --release -p grant-cli)..." >&2
cargo build --release -q -p grant-cli
grant=$root/target/release/grant

# ----- processes -----------------------------------------------------------

work=$cache/run
if [ -n "$soak" ]; then
    work=$cache/soak
    if [ "$SCRAPE_METRICS" = 1 ]; then work=$cache/soak-scraped; fi
fi
rm -rf "$work"
mkdir -p "$work"
work=$root/$work

pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        # At most 5 s for each to drain, then SIGKILL.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    # The SQLite files grow fast (a 10-minute soak writes about 3 GB):
    # they are not kept.
    rm -f "$work"/*.db "$work"/*.db-wal "$work"/*.db-shm "$work/cerbos.log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts `grant serve` on a store; sets $url and $pid.
start_grant() {
    local name=$1 store=$2
    mkdir -p "$work/$name-state"
    "$grant" serve --policy "$here/policy.grant" --store "$store" --listen 127.0.0.1:0 \
        --state-dir "$work/$name-state" >"$work/$name.out" 2>"$work/$name.err" &
    pid=$!
    pids+=("$pid")
    url=
    for _ in $(seq 300); do
        url=$(sed -n '1s/^listening on //p' "$work/$name.out")
        [ -n "$url" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$url" ]; then
        echo "error: grant serve ($name) did not start:" >&2
        cat "$work/$name.err" >&2
        exit 1
    fi
}

# Opens $TASKS tasks on $1; their ids go to $2.
open_tasks() {
    local base=$1 file=$2
    : >"$file"
    for _ in $(seq "$TASKS"); do
        # The answer has no final newline: add one for sed.
        { curl -sf --max-time 5 -X POST "$base/v1/tasks" -H 'Content-Type: application/json' \
            -d '{"agent":"bench-agent"}'; echo; } | sed -n 's/.*"task_id":"\([^"]*\)".*/\1/p' >>"$file"
    done
    if [ "$(wc -l <"$file")" != "$TASKS" ]; then
        echo "error: could not open $TASKS tasks on $base" >&2
        exit 1
    fi
}

seconds_of() { # wrk durations: 15, 15s, 2m, 1h
    case "$1" in
        *h) echo $((${1%h} * 3600)) ;;
        *m) echo $((${1%m} * 60)) ;;
        *s) echo "${1%s}" ;;
        *) echo "$1" ;;
    esac
}

# Runs wrk: name, url, script, duration; the RESULT line goes to $work/name.result.
run_wrk() {
    local name=$1 target=$2 script=$3 duration=$4
    local bound=$(($(seconds_of "$duration") + 30))
    if [ "$WARMUP" -gt 0 ]; then
        timeout 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -s "$script" "$target" >/dev/null 2>&1 || true
    fi
    echo "wrk -t$THREADS -c$CONNECTIONS -d$duration --latency -s $script $target" >&2
    timeout "$bound" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$duration" --timeout 2s --latency \
        -s "$script" "$target" >"$work/$name.txt" 2>&1 || {
        echo "error: wrk failed or overran ($name):" >&2
        cat "$work/$name.txt" >&2
        exit 1
    }
    grep '^RESULT ' "$work/$name.txt" | tail -1 >"$work/$name.result" || {
        echo "error: no RESULT line from wrk ($name):" >&2
        cat "$work/$name.txt" >&2
        exit 1
    }
}

field() { # field NAME KEY: a value of its RESULT line
    sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$work/$1.result"
}

ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }
rate() { # 12345.6 -> 12,346
    awk -v r="$1" 'BEGIN { s = sprintf("%.0f", r); while (s ~ /[0-9][0-9][0-9][0-9]/) sub(/[0-9][0-9][0-9]($|,)/, ",&", s); print s }'
}

conditions() {
    local cpu
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
    echo "- Machine: $(nproc) CPUs ($cpu), $(uname -sr), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM."
    echo "- Load average before the runs: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)."
    if [ -n "$soak" ]; then
        echo "- wrk: $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'), \`-t$THREADS -c$CONNECTIONS -d${soak}m --latency\`, keep-alive, on the same machine."
    else
        echo "- wrk: $(wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }'), \`-t$THREADS -c$CONNECTIONS -d$DURATION --latency\`, keep-alive, on the same machine; ${WARMUP} s of unrecorded load before each run."
    fi
    echo "- grant: \`$commit\` (release), \`grant serve --listen 127.0.0.1:0\`, no tokens, no decision log; $(rustc --version | awk '{ print $1, $2 }')."
}

commit=$(git rev-parse --short HEAD)
if ! git diff --quiet HEAD -- crates; then commit="$commit+changes"; fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ----- the soak -------------------------------------------------------------

if [ -n "$soak" ]; then
    seconds=$((soak * 60))
    # Warm-up: the first minute, or the first fifth of a short run.
    warm=$((seconds / 5 < 60 ? seconds / 5 : 60))
    start_grant soak "sqlite:$work/soak.db"
    soak_url=$url soak_pid=$pid
    open_tasks "$soak_url" "$work/tasks.txt"
    export SERVE_TASKS=$work/tasks.txt
    echo "soak: $soak min of $here/mix.lua on $soak_url (pid $soak_pid), RSS every 10 s" >&2
    timeout $((seconds + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --timeout 2s --latency \
        -s "$here/mix.lua" "$soak_url" >"$work/soak.txt" 2>&1 &
    wrk_pid=$!
    pids+=("$wrk_pid")
    # VmRSS, and its parts: anonymous memory (the heap, stacks) and file
    # pages (the binary, SQLite's files); and the threads (tokio's
    # blocking pool grows and shrinks with the ledger calls in flight).
    rss() {
        awk '/^(VmRSS|RssAnon|RssFile|Threads):/ { v[$1] = $2 }
            END { printf "%s\t%s\t%s\t%s", v["VmRSS:"], v["RssAnon:"], v["RssFile:"], v["Threads:"] }' \
            "/proc/$soak_pid/status"
    }
    printf 'seconds\trss_kib\tanon_kib\tfile_kib\tthreads\n' >"$work/rss.tsv"
    t=0
    printf '%s\t%s\n' "$t" "$(rss)" >>"$work/rss.tsv"
    while [ "$t" -lt "$seconds" ]; do
        sleep 10
        t=$((t + 10))
        kill -0 "$soak_pid" 2>/dev/null || { echo "error: grant serve died during the soak" >&2; exit 1; }
        if [ "$SCRAPE_METRICS" = 1 ]; then
            curl -sf --max-time 5 "$soak_url/metrics" >/dev/null || true
        fi
        printf '%s\t%s\n' "$t" "$(rss)" >>"$work/rss.tsv"
    done
    wait "$wrk_pid" || { echo "error: wrk failed:" >&2; cat "$work/soak.txt" >&2; exit 1; }
    grep '^RESULT ' "$work/soak.txt" | tail -1 >"$work/soak.result"
    curl -sf --max-time 5 "$soak_url/metrics" >"$work/soak-metrics.txt" || true
    first=$(awk -v w="$warm" 'NR > 1 && $1 >= w { print $2; exit }' "$work/rss.tsv")
    last=$(awk 'END { print $2 }' "$work/rss.tsv")
    peak=$(awk 'NR > 1 && $2 > m { m = $2 } END { print m }' "$work/rss.tsv")
    growth=$(awk -v a="$first" -v b="$last" 'BEGIN { printf "%+.1f%%", (b - a) * 100 / a }')
    errors=$(($(field soak non2xx) + $(field soak socket_errors)))
    {
        echo "## Memory under load: grant serve, SQLite ($soak min)"
        echo
        echo "Generated by \`benches/serve/run.sh --soak $soak\` on $(date -u +%Y-%m-%d) at commit \`$commit\`."
        echo
        echo "Load: \`$here/mix.lua\` (three \`POST /v1/decide\`, then one \`POST /v1/grants\` in one of $TASKS open tasks, over and over), a fresh SQLite file; \`/metrics\` $([ "$SCRAPE_METRICS" = 1 ] && echo "scraped every 10 s" || echo "never scraped")."
        echo
        echo "| | value |"
        echo "|---|---:|"
        echo "| requests | $(rate "$(field soak requests)") ($(rate "$(field soak rps)")/s), p99 $(ms "$(field soak p99_us)") |"
        echo "| errors (non-2xx + socket) | $errors |"
        echo "| RSS at start | $(awk 'NR == 2 { print $2 }' "$work/rss.tsv") KiB |"
        echo "| RSS after the warm-up (first sample at ≥ $warm s) | $first KiB |"
        echo "| RSS at the end | $last KiB |"
        echo "| peak RSS sampled | $peak KiB |"
        echo "| anonymous / file-backed RSS, after the warm-up → at the end | $(awk -v w="$warm" 'NR > 1 && $1 >= w { print $3 " / " $4; exit }' "$work/rss.tsv") → $(awk 'END { print $3 " / " $4 }' "$work/rss.tsv") KiB |"
        echo "| threads, after the warm-up → at the end (peak) | $(awk -v w="$warm" 'NR > 1 && $1 >= w { print $5; exit }' "$work/rss.tsv") → $(awk 'END { print $5 }' "$work/rss.tsv") ($(awk 'NR > 1 && $5 > m { m = $5 } END { print m }' "$work/rss.tsv")) |"
        echo "| growth after the warm-up | $growth |"
        echo
        echo "RSS samples (KiB, every 10 s): $(awk 'NR > 1 { printf "%s%s", sep, $2; sep = " " }' "$work/rss.tsv")"
        echo
        conditions
    } | tee "$here/soak$([ "$SCRAPE_METRICS" = 1 ] && echo -scraped).md"
    exit 0
fi

# ----- the five runs -------------------------------------------------------

start_grant memory memory
mem_url=$url
start_grant sqlite "sqlite:$work/grants.db"
sql_url=$url

if [ -n "$cerbos" ]; then
    cerbos_http=$(free_port)
    cerbos_grpc=$(free_port)
    while [ "$cerbos_grpc" = "$cerbos_http" ]; do cerbos_grpc=$(free_port); done
    cerbos_url=http://127.0.0.1:$cerbos_http
    (cd "$work" && exec "$cerbos" server --log-level="$CERBOS_LOG_LEVEL" --debug-listen-addr= \
        --set=server.httpListenAddr="127.0.0.1:$cerbos_http" \
        --set=server.grpcListenAddr="127.0.0.1:$cerbos_grpc" \
        --set=storage.driver=disk \
        --set=storage.disk.directory="$root/$here/cerbos/policies" \
        --set=telemetry.disabled=true >"$work/cerbos.log" 2>&1) &
    pids+=("$!")
    for _ in $(seq 300); do
        curl -sf --max-time 1 "$cerbos_url/_cerbos/health" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -sf --max-time 1 "$cerbos_url/_cerbos/health" >/dev/null || {
        echo "error: Cerbos did not start:" >&2
        tail -20 "$work/cerbos.log" >&2
        exit 1
    }
    cerbos_version=$("$cerbos" --version 2>&1 | head -1)
fi

# Each server decides the request as expected before it is loaded.
answer=$(curl -sf --max-time 5 -X POST "$mem_url/v1/decide" -H 'Content-Type: application/json' \
    -d '{"tool":"db.read","attrs":{"db":{"env":"prod"}}}')
case "$answer" in *'"allow"'*) ;; *) echo "error: grant did not allow: $answer" >&2; exit 1 ;; esac
if [ -n "$cerbos" ]; then
    answer=$(curl -sf --max-time 5 -X POST "$cerbos_url/api/check/resources" -H 'Content-Type: application/json' \
        -d '{"requestId":"bench","principal":{"id":"agent-1","roles":["agent"]},"resources":[{"actions":["db.read"],"resource":{"kind":"tool","id":"db","attr":{"db_env":"prod"}}}]}')
    case "$answer" in *EFFECT_ALLOW*) ;; *) echo "error: Cerbos did not allow: $answer" >&2; exit 1 ;; esac
fi
open_tasks "$sql_url" "$work/tasks.txt"
export SERVE_TASKS=$work/tasks.txt

run_wrk grant_health "$mem_url/health" "$here/health.lua" "$DURATION"
run_wrk grant_decide "$mem_url/v1/decide" "$here/decide.lua" "$DURATION"
curl -sf --max-time 5 "$mem_url/metrics" >"$work/metrics-memory.txt" || true
if [ -n "$cerbos" ]; then
    run_wrk cerbos_health "$cerbos_url/_cerbos/health" "$here/health.lua" "$DURATION"
    run_wrk cerbos_check "$cerbos_url/api/check/resources" "$here/cerbos-check.lua" "$DURATION"
fi
run_wrk grant_grants "$sql_url/v1/grants" "$here/grants.lua" "$DURATION"
curl -sf --max-time 5 "$sql_url/metrics" >"$work/metrics-sqlite.txt" || true

# ----- the table -----------------------------------------------------------

verdict() { if [ "$1" = 1 ]; then echo met; else echo "**missed**"; fi; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? 1 : 0 }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
errors_of() { echo $(($(field "$1" non2xx) + $(field "$1" socket_errors))); }
total_errors=0
row() {
    local name=$1 label=$2 errors
    errors=$(errors_of "$name")
    total_errors=$((total_errors + errors))
    echo "| $label | $(rate "$(field "$name" rps)") | $(ms "$(field "$name" p50_us)") | $(ms "$(field "$name" p90_us)") | $(ms "$(field "$name" p99_us)") | $(ms "$(field "$name" max_us)") | $(field "$name" non2xx) + $(field "$name" socket_errors) |"
}

{
    echo "## grant serve under load (benches/serve)"
    echo
    echo "Generated by \`benches/serve/run.sh\` on $(date -u +%Y-%m-%d) at commit \`$commit\`."
    echo
    echo "| route | requests/s | p50 | p90 | p99 | max | errors (non-2xx + socket) |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    row grant_health "grant \`GET /health\` (memory store)"
    row grant_decide "grant \`POST /v1/decide\` (memory store)"
    if [ -n "$cerbos" ]; then
        row cerbos_health "Cerbos \`GET /_cerbos/health\`"
        row cerbos_check "Cerbos \`POST /api/check/resources\`"
    fi
    row grant_grants "grant \`POST /v1/grants\` (SQLite, $TASKS tasks)"
    echo
    echo "| target | measured | target | |"
    echo "|---|---:|---:|---|"
    d_rps=$(field grant_decide rps) h_rps=$(field grant_health rps) d_p99=$(field grant_decide p99_us)
    echo "| decide / health throughput | $(div "$d_rps" "$h_rps") | ≥ 0.50 | $(verdict "$(ge "$d_rps" "$(awk -v h="$h_rps" 'BEGIN { print h / 2 }')")") |"
    echo "| decide p99 | $(ms "$d_p99") | ≤ 5 ms | $(verdict "$(ge 5000 "$d_p99")") |"
    if [ -n "$cerbos" ]; then
        c_rps=$(field cerbos_check rps) c_p99=$(field cerbos_check p99_us)
        echo "| decisions/s, grant / Cerbos | $(div "$d_rps" "$c_rps")x | ≥ 10x | $(verdict "$(ge "$d_rps" "$(awk -v c="$c_rps" 'BEGIN { print c * 10 }')")") |"
        echo "| p99, Cerbos / grant | $(div "$c_p99" "$d_p99")x | ≥ 5x | $(verdict "$(ge "$c_p99" "$((d_p99 * 5))")") |"
        echo "| health, grant / Cerbos (reference) | $(div "$h_rps" "$(field cerbos_health rps)")x | | |"
    fi
    g_rps=$(field grant_grants rps)
    echo "| \`POST /v1/grants\` on SQLite | $(rate "$g_rps")/s | ≥ 1,500/s | $(verdict "$(ge "$g_rps" 1500)") |"
    echo "| errors, all runs | $total_errors | 0 | $(verdict "$([ "$total_errors" = 0 ] && echo 1 || echo 0)") |"
    echo
    conditions
    [ -n "$cerbos" ] && echo "- Cerbos: ${cerbos_version:-?} (\`cerbos server\`, disk store of $here/cerbos/policies, log level $CERBOS_LOG_LEVEL, telemetry off)."
    echo "- Raw wrk output and /metrics: $cache/run/."
} | tee "$here/results.md"
