#!/usr/bin/env bash
# Fuzzes the service against its OpenAPI document (docs/openapi.yaml) with
# schemathesis: every answer must be no 5xx and match the documented schema
# of its status.
#
#   .ci/schemathesis.sh PATH/TO/grant [extra schemathesis arguments...]
#
# It starts `grant serve --policy <test policy> --store memory --listen
# 127.0.0.1:0` (whose first stdout line is `listening on http://ADDR`),
# runs `schemathesis run` against that address, bounded in examples and in
# wall-clock time, then stops the server. Any executable with the same
# contract serves as PATH/TO/grant (crates/grant-server/examples/
# serve_for_schemathesis.rs is one, for checking the document against the
# router alone). Installs schemathesis with pip when it is missing.
#
# Environment: GRANT_ST_POLICY (the policy served; default the service's
# test policy), GRANT_ST_MAX_EXAMPLES (per operation; default 25),
# GRANT_ST_TIMEOUT (seconds for the whole run; default 300).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
  echo "usage: $0 PATH/TO/grant [schemathesis arguments...]" >&2
  exit 2
fi
grant=$1
shift
policy=${GRANT_ST_POLICY:-crates/grant-server/tests/policies/service.grant}
max_examples=${GRANT_ST_MAX_EXAMPLES:-25}
limit=${GRANT_ST_TIMEOUT:-300}

if ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install --quiet 'schemathesis>=4,<5'
fi

work=$(mktemp -d /tmp/grant-schemathesis.XXXXXX)
server_pid=
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    # A graceful stop drains requests; one that hangs is killed.
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop_server EXIT

"$grant" serve --policy "$policy" --store memory --listen 127.0.0.1:0 \
  >"$work/stdout" 2>"$work/stderr" &
server_pid=$!

address=
for _ in $(seq 300); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the server exited before listening:" >&2
    cat "$work/stderr" >&2
    exit 1
  fi
  line=$(head -n 1 "$work/stdout" 2>/dev/null || true)
  case "$line" in
    "listening on http://"*)
      address=${line#listening on }
      break
      ;;
  esac
  sleep 0.1
done
if [ -z "$address" ]; then
  echo "the server did not say where it listens within 30 s" >&2
  cat "$work/stderr" >&2
  exit 1
fi
echo "== schemathesis against $address (policy $policy, $max_examples examples per operation, at most ${limit}s)"

# From the scratch folder: schemathesis leaves its caches where it runs.
document=$PWD/docs/openapi.yaml
status=0
(cd "$work" && timeout --signal=INT --kill-after=15 "$limit" \
  schemathesis run "$document" \
    --url "$address" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$max_examples" \
    --workers 1 \
    --request-timeout 15 \
    --seed "${GRANT_ST_SEED:-1}" \
    --no-color \
    --generation-database none \
    "$@") || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 130 ]; then
  echo "schemathesis ran past its ${limit}s limit" >&2
fi
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "the server died during the run:" >&2
  cat "$work/stderr" >&2
  status=1
fi
exit "$status"
