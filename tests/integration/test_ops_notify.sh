#!/usr/bin/env bash
# `credvault serve` speaks systemd's notification protocol: READY=1 only
# after the token and the database answered, WATCHDOG=1 while both answer and
# none once the database is gone, STOPPING=1 on SIGTERM. A datagram socket
# stands in for systemd's (NOTIFY_SOCKET, WATCHDOG_USEC as systemd sets them).
set -euo pipefail
bin=${CREDVAULT_BIN:?} tmp=${CV_TEST_TMP:?}
fail() {
  echo "test_ops_notify: $*" >&2
  echo "--- notifications:" >&2; cat "$tmp/notify.log" >&2 || true
  echo "--- serve's log:" >&2; cat "$tmp/serve.log" >&2 || true
  exit 1
}
"$bin" migrate >/dev/null
"$bin" hsm init >/dev/null

sock=$tmp/notify.sock
python3 -u - "$sock" >"$tmp/notify.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(90)
while True:
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        break
    print(msg.replace("\n", " | "), flush=True)
    if "STOPPING=1" in msg:
        break
PY
listener=$!
for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.05; done
[[ -S $sock ]] || fail "the notification socket did not appear"

NOTIFY_SOCKET=$sock WATCHDOG_USEC=400000 CREDVAULT_TLS=off CREDVAULT_LISTEN=127.0.0.1:0 \
  "$bin" serve 2>"$tmp/serve.log" &
server=$!
stop_server() { kill -TERM "$server" 2>/dev/null || true; }
trap stop_server EXIT

count() { grep -c -- "$1" "$tmp/notify.log" || true; }
wait_for() { # PATTERN N SECONDS
  for _ in $(seq $(($3 * 10))); do (($(count "$1") >= $2)) && return 0; sleep 0.1; done
  return 1
}
wait_for 'READY=1' 1 60 || fail "no READY=1"
grep -q '"serving"' "$tmp/serve.log" || fail "READY=1 came before the service logged that it serves"
[[ $(head -1 "$tmp/notify.log") == READY=1* ]] || fail "the first notification is not READY=1"
wait_for 'WATCHDOG=1' 3 20 || fail "fewer than 3 WATCHDOG=1 within 20 s at WATCHDOG_USEC=400000"

# the database goes away: the keep-alives stop and the status says why
"$(dirname "$0")/../../scripts/pg-cluster" stop "${CV_PG_DIR:?}" >/dev/null
wait_for 'STATUS=not ready' 1 60 || fail "no 'not ready' status once the database stopped"
before=$(count 'WATCHDOG=1')
sleep 2
after=$(count 'WATCHDOG=1')
((after == before)) || fail "WATCHDOG=1 kept coming ($before, then $after) with the database down"

kill -TERM "$server"
rc=0
wait "$server" || rc=$?
trap - EXIT
((rc == 0)) || fail "serve exited $rc on SIGTERM"
wait "$listener" || true
grep -q 'STOPPING=1' "$tmp/notify.log" || fail "no STOPPING=1 on SIGTERM"
echo "test_ops_notify: ok"
