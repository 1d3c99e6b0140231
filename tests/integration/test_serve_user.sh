#!/usr/bin/env bash
# `credvault serve` started as root: without a user to become it refuses to
# run (unless root is allowed explicitly), an unknown user stops it before
# anything opens, and with CREDVAULT_USER it binds, reads the root-only TLS
# key and PIN, then runs as that user alone (every uid and gid, the groups,
# no capability left) and still serves requests that reach the token and the
# database. Needs root: CI runs as root, so there a non-root run fails.
set -euo pipefail
bin=${CREDVAULT_BIN:?} tmp=${CV_TEST_TMP:?}
src=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $(id -u) != 0 ]]; then
  echo "test_serve_user: needs root (it starts serve as root and checks it becomes another user)" >&2
  if [[ ${CV_NO_SKIP:-0} == 1 ]]; then exit 1; fi
  exit 77
fi
fail() {
  echo "test_serve_user: $*" >&2
  for f in "$tmp"/serve-*.log; do echo "--- $f:" >&2; cat "$f" >&2 || true; done
  exit 1
}
user=nobody
getent passwd "$user" >/dev/null || fail "user $user does not exist"
uid=$(id -u "$user") gid=$(id -g "$user")

"$bin" migrate >/dev/null
"$bin" hsm init >/dev/null
admin=$("$bin" token create --name admin --role admin)
"$src/scripts/make-cert" "$tmp/tls" >/dev/null
export CREDVAULT_TLS_CERT=$tmp/tls/server.crt CREDVAULT_TLS_KEY=$tmp/tls/server.key CREDVAULT_LISTEN=127.0.0.1:0
unset CREDVAULT_ALLOW_ROOT CREDVAULT_USER
# what the user must use after the switch is its own, as an operator would
# make it; the PIN and the TLS key stay root's: read before the switch
hsm_dir=$(dirname "$(dirname "${SOFTHSM2_CONF:?}")")/hsm
chown -R "$user" "$hsm_dir/tokens"
chmod 711 "$hsm_dir"
chmod 600 "${CREDVAULT_HSM_PIN_FILE:?}" "$CREDVAULT_TLS_KEY"
# workers connect to PostgreSQL after the switch: the user must reach the
# socket (this throwaway cluster's is root's and postgres' only: opened here)
chmod o+x "${CV_PG_DIR:?}" "$CV_PG_DIR/socket"
chmod 666 "$CV_PG_DIR/socket/.s.PGSQL.5432"

# 1. root without a user: refused, before it listens
rc=0
timeout 60 "$bin" serve >"$tmp/serve-root.log" 2>&1 || rc=$?
((rc == 1)) || fail "serve as root without a user exited $rc, not 1"
grep -q "refusing to serve as root" "$tmp/serve-root.log" || fail "no refusal message"
grep -q "CREDVAULT_USER" "$tmp/serve-root.log" || fail "the refusal does not say how to fix it"
! grep -q '"serving"' "$tmp/serve-root.log" || fail "serve served as root without being allowed"

# 2. a user that does not exist: refused by name
rc=0
timeout 60 "$bin" serve --user no-such-user-cv >"$tmp/serve-nouser.log" 2>&1 || rc=$?
((rc == 1)) || fail "serve --user no-such-user-cv exited $rc, not 1"
grep -q "no-such-user-cv: no such user" "$tmp/serve-nouser.log" || fail "the unknown user is not named"

# 3. CREDVAULT_USER: listens, then runs as the user alone
CREDVAULT_USER=$user "$bin" serve >"$tmp/serve-user.log" 2>&1 &
server=$!
stop_server() { kill -TERM "$server" 2>/dev/null || true; }
trap stop_server EXIT
for _ in $(seq 600); do
  grep -q '"serving"' "$tmp/serve-user.log" && break
  kill -0 "$server" 2>/dev/null || fail "serve exited before serving"
  sleep 0.1
done
grep -q '"serving"' "$tmp/serve-user.log" || fail "serve did not start within 60 s"
grep -q "\"privileges_dropped\".*\"user\":\"$user\"" "$tmp/serve-user.log" || fail "no privileges_dropped line"
status=/proc/$server/status
[[ $(awk '/^Uid:/ {print $2, $3, $4, $5}' "$status") == "$uid $uid $uid $uid" ]] ||
  fail "uids are $(grep ^Uid: "$status"), not all $uid"
[[ $(awk '/^Gid:/ {print $2, $3, $4, $5}' "$status") == "$gid $gid $gid $gid" ]] ||
  fail "gids are $(grep ^Gid: "$status"), not all $gid"
want_groups=$(id -G "$user" | tr ' ' '\n' | sort -n | tr '\n' ' ')
have_groups=$(awk '/^Groups:/ {for (i = 2; i <= NF; i++) print $i}' "$status" | sort -n | tr '\n' ' ')
[[ $have_groups == "$want_groups" ]] || fail "groups are '$have_groups', not the user's '$want_groups'"
for cap in CapPrm CapEff CapAmb; do
  [[ $(awk "/^$cap:/ {print \$2}" "$status") == 0000000000000000 ]] || fail "$cap is not empty: $(grep "^$cap:" "$status")"
done
# every thread, not only the main one (glibc applies set*id to all)
for t in /proc/$server/task/*/status; do
  [[ $(awk '/^Uid:/ {print $2, $3, $4, $5}' "$t") == "$uid $uid $uid $uid" ]] || fail "thread $t kept uid $(grep ^Uid: "$t")"
done

port=$(grep -o '"serving".*' "$tmp/serve-user.log" | grep -o '"port":"[0-9]*"' | grep -o '[0-9]*')
url=https://127.0.0.1:$port
call() { curl -sS --cacert "$tmp/tls/ca.crt" -o "$tmp/body" -w '%{http_code}' "$@"; }
[[ $(call "$url/readyz") == 200 ]] || fail "/readyz: $(cat "$tmp/body")"
# a tenant: a key made in the token and a row written, both after the switch
[[ $(call -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
  -d '{"id":"after-drop","name":"After drop"}' "$url/api/tenants") == 201 ]] || fail "POST /api/tenants: $(cat "$tmp/body")"
[[ $(call -H "Authorization: Bearer $admin" "$url/api/tenants/after-drop") == 200 ]] ||
  fail "GET /api/tenants/after-drop: $(cat "$tmp/body")"

kill -TERM "$server"
rc=0
wait "$server" || rc=$?
trap - EXIT
((rc == 0)) || fail "serve exited $rc on SIGTERM"
echo "test_serve_user: ok"
