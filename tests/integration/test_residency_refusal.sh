#!/usr/bin/env bash
# A token whose master key is marked with `hsm init --residency-hsm-only`:
# `hsm status` shows the mark, a master rotation carries it to the new master
# key, `serve` refuses CREDVAULT_KEY_RESIDENCY=memory with a message that names
# the mark and the way out, and serves with hsm residency; a misspelt
# residency is refused by name; --residency-hsm-only on a master key made
# without the mark is refused (master keys are not modifiable).
set -euo pipefail
bin=${CREDVAULT_BIN:?} tmp=${CV_TEST_TMP:?}
fails=0
fail() { echo "test_residency_refusal: $*" >&2; fails=1; }
expect_in() { # NAME FILE WANT...
  local name=$1 file=$2
  shift 2
  for want in "$@"; do grep -qF -- "$want" "$file" || fail "$name: no '$want' in: $(cat "$file")"; done
}
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export CREDVAULT_TLS=off CREDVAULT_LISTEN=127.0.0.1:$port

"$bin" migrate >/dev/null
"$bin" hsm init --residency-hsm-only >"$tmp/init.log" 2>&1 || fail "hsm init --residency-hsm-only failed: $(cat "$tmp/init.log")"
# again: nothing to do, still marked
"$bin" hsm init --residency-hsm-only >"$tmp/init2.log" 2>&1 || fail "a second hsm init failed: $(cat "$tmp/init2.log")"
"$bin" hsm status >"$tmp/status.txt" 2>&1 || fail "hsm status failed: $(cat "$tmp/status.txt")"
expect_in "hsm status" "$tmp/status.txt" "residency:     hsm only"
"$bin" hsm status --json >"$tmp/status.json"
expect_in "hsm status --json" "$tmp/status.json" '"residency": "hsm-only"'

# memory residency: refused before anything listens, naming the mark
rc=0
CREDVAULT_KEY_RESIDENCY=memory timeout 60 "$bin" serve >"$tmp/serve-memory.log" 2>&1 || rc=$?
((rc != 0 && rc != 124)) || fail "serve with memory residency on a marked token exited $rc: $(cat "$tmp/serve-memory.log")"
expect_in "serve, memory" "$tmp/serve-memory.log" "CREDVAULT_KEY_RESIDENCY=memory refused" \
  "marked for hsm residency only" "--residency-hsm-only" "Set CREDVAULT_KEY_RESIDENCY=hsm"

# a misspelt residency never falls back to the other one
rc=0
CREDVAULT_KEY_RESIDENCY=memroy timeout 60 "$bin" serve >"$tmp/serve-typo.log" 2>&1 || rc=$?
((rc != 0 && rc != 124)) || fail "serve with CREDVAULT_KEY_RESIDENCY=memroy exited $rc"
expect_in "serve, typo" "$tmp/serve-typo.log" "CREDVAULT_KEY_RESIDENCY must be hsm or memory"

# a master rotation: the new master key carries the mark
"$bin" master rotate >"$tmp/rotate.log" 2>&1 || fail "master rotate failed: $(cat "$tmp/rotate.log")"
"$bin" hsm status --json >"$tmp/status2.json"
expect_in "hsm status after rotation" "$tmp/status2.json" '"residency": "hsm-only"'
/usr/bin/python3 - "$tmp/status2.json" <<'PY' || fail "the rotation made no master key 2: $(cat "$tmp/status2.json")"
import json, sys
sys.exit(0 if 2 in json.load(open(sys.argv[1]))["masterKeyVersions"] else 1)
PY
rc=0
CREDVAULT_KEY_RESIDENCY=memory timeout 60 "$bin" serve >"$tmp/serve-memory2.log" 2>&1 || rc=$?
((rc != 0 && rc != 124)) || fail "serve with memory residency after the rotation exited $rc"
expect_in "serve, memory, after rotation" "$tmp/serve-memory2.log" "marked for hsm residency only"

# hsm residency serves on the marked token
CREDVAULT_KEY_RESIDENCY=hsm "$bin" serve >"$tmp/serve-hsm.log" 2>&1 &
pid=$!
up=0
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then up=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
((up == 1)) || fail "serve with hsm residency on a marked token did not answer: $(cat "$tmp/serve-hsm.log")"
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" || true

# a token whose master key was made without the mark cannot be marked later
mkdir -p "$tmp/plain"
plain_env=$("$CV_SOURCE_DIR/hsm-config/make-softhsm-token" "$tmp/plain/hsm" cv-plain)
(
  while IFS= read -r line; do export "${line?}"; done <<<"$plain_env"
  "$bin" hsm init >/dev/null 2>&1
  rc=0
  "$bin" hsm init --residency-hsm-only >"$tmp/late.log" 2>&1 || rc=$?
  ((rc != 0)) || { echo "test_residency_refusal: marking an existing master key succeeded" >&2; exit 1; }
  grep -qF "exists without the hsm-only mark" "$tmp/late.log" || {
    echo "test_residency_refusal: late mark: $(cat "$tmp/late.log")" >&2
    exit 1
  }
  "$bin" hsm status >"$tmp/plain-status.txt" 2>&1
  grep -qF "residency:     hsm or memory" "$tmp/plain-status.txt" || {
    echo "test_residency_refusal: unmarked status: $(cat "$tmp/plain-status.txt")" >&2
    exit 1
  }
) || fails=1
exit $fails
