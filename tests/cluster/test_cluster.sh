#!/usr/bin/env bash
# The cluster shape under a steady write load through HAProxy (scripts/cluster,
# in a folder and on ports of its own): the primary stopped in immediate mode
# and the standby promoted, one instance killed with SIGKILL and restarted,
# the old primary re-attached and switched back to; a rewrap started on the
# killed instance is finished by the others. Right after the failover,
# a tenant key rotation, a master rotation, a token revoke and a tenant shred
# made on one instance take effect on every instance within 1 s (the key
# listeners reconnected and caught up). Afterwards every acknowledged write is
# there and readable, none is there twice, no request hung, every 503 carried
# Retry-After. A missing haproxy fails the test.
set -euo pipefail
src=${CV_SOURCE_DIR:?} client=${CV_CLUSTER_CLIENT:?}
export CREDVAULT_BIN=${CREDVAULT_BIN:?}
t0=$SECONDS
elapsed() { echo "$((SECONDS - t0))s"; }
say() { echo "test_cluster: [$(elapsed)] $*"; }

command -v haproxy >/dev/null || { echo "test_cluster: haproxy not found (scripts/install-deps installs it)" >&2; exit 1; }
command -v curl >/dev/null || { echo "test_cluster: curl not found" >&2; exit 1; }

# a short path: PostgreSQL's socket path must fit in sun_path
tmp=$(mktemp -d /tmp/cv-cl.XXXXXX)
chmod 755 "$tmp"
export CV_CLUSTER_DIR=$tmp/c
dir=$CV_CLUSTER_DIR

# Four free ports below the kernel's ephemeral range, so no client socket takes one meanwhile.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 50); do
  base=$((20000 + (RANDOM % 1200) * 10))
  port_free "$base" && port_free $((base + 1)) && port_free $((base + 2)) && port_free $((base + 3)) && break
done
export CV_CLUSTER_PORT=$base CV_CLUSTER_INSTANCE_PORTS="$((base + 1)) $((base + 2)) $((base + 3))"
read -r -a ports <<<"$CV_CLUSTER_INSTANCE_PORTS"

load_pid=
finish() {
  local rc=$?
  set +e
  [[ -n $load_pid ]] && kill "$load_pid" 2>/dev/null
  if ((rc != 0)); then
    echo "--- test_cluster failed; the end of each log:" >&2
    for f in "$dir"/log/*.log "$dir"/pg-*/log/*.log; do
      [[ -f $f ]] && { echo "--- $f" >&2; grep -v '"/readyz"' "$f" | tail -15 >&2; }
    done
  fi
  "$src/scripts/cluster" stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
  exit "$rc"
}
trap finish EXIT
fail() { echo "test_cluster: $*" >&2; exit 1; }

# rewrap batches small and slow, so that the job outlives the instance that starts it
export CREDVAULT_REWRAP_BATCH_SIZE=20 CREDVAULT_REWRAP_PAUSE_MS=100
say "starting the cluster in $dir (HAProxy on $CV_CLUSTER_PORT, instances on $CV_CLUSTER_INSTANCE_PORTS)"
"$src/scripts/cluster" start
ca=$dir/tls/ca.crt admin=$(cat "$dir/admin-token") front=https://127.0.0.1:$CV_CLUSTER_PORT

api() { # METHOD PATH TOKEN [BODY]
  curl -sS --fail-with-body --max-time 10 --cacert "$ca" -X "$1" -H "Authorization: Bearer $3" \
    ${4:+-H 'Content-Type: application/json' --data "$4"} "$front$2"
}
api POST /api/tenants "$admin" '{"id":"load","name":"Load"}' >/dev/null
tok=$(api POST /api/tokens "$admin" '{"name":"writer@load","role":"tenant-admin","tenantId":"load"}' |
  sed -E 's/.*"token":"([^"]+)".*/\1/')
[[ -n $tok ]] || fail "no token minted"

acked() {
  local n=0 f
  for f in "$tmp"/out/acked-*; do [[ -f $f ]] && n=$((n + $(wc -l <"$f"))); done
  echo "$n"
}
# acknowledged writes grow by at least N within S seconds
wait_progress() { # N SECONDS WHAT
  local from until
  from=$(acked) until=$((SECONDS + $2))
  while (($(acked) < from + $1)); do
    ((SECONDS < until)) || fail "fewer than $1 writes acknowledged within $2 s $3"
    sleep 0.2
  done
}

mkdir -p "$tmp/out"
say "write load: 3 writers through HAProxy, an Idempotency-Key per write"
"$client" load "$front" "$ca" "$tok" "$tmp/out" 3 "$tmp/stop" >"$tmp/load.txt" &
load_pid=$!
wait_progress 20 20 "before the failover"

say "failover: the primary stopped in immediate mode, the standby promoted 6 s later"
CV_CLUSTER_FAILOVER_PAUSE_S=6 "$src/scripts/cluster" failover
# At once, before anything else: a master rotation on instance 1 while the key
# listeners of 2 and 3 may still be reconnecting, so its NOTIFY can reach
# them only if they were listening already; else they must read it from the
# event table when they reconnect. Nothing but the listener makes instances
# 2 and 3 pick up a new master here (the load creates no tenant key).
now_ms() { date +%s%3N; }
for _ in $(seq 200); do
  t_rot=$(now_ms)
  rot=$(curl -s --max-time 10 --cacert "$ca" -X POST -H "Authorization: Bearer $admin" \
    "https://127.0.0.1:${ports[0]}/api/admin/master-keys/rotate" || true)
  [[ $rot == *'"success":true'* ]] && break
  sleep 0.05
done
ver=$(sed -nE 's/.*"version":([0-9]+).*/\1/p' <<<"$rot")
[[ -n $ver ]] || fail "master rotate on instance 1 after the failover: $rot"
heard() { grep -q "\"event\":\"master_version_changed\".*\"to\":\"$ver\"" "$dir/log/instance-$1.log"; }
until heard 2 && heard 3; do
  (($(now_ms) - t_rot < 10000)) || fail "instances 2 and 3 did not pick up master $ver within 10 s after the failover"
  sleep 0.02
done
# The listeners' latency from the services' own clocks (one machine): from
# the rotation's commit on instance 1 to the later of 2 and 3 taking it up.
# The shell's view would add curl's start and TLS handshake and this loop's
# polling, which on a busy machine take seconds.
log_ms() { # INSTANCE EVENT FIELD VALUE: the time of the first such event, in ms
  local t
  t=$(jq -r --arg e "$2" --arg f "$3" --arg v "$4" 'select(.event == $e and .[$f] == $v) | .time' \
    "$dir/log/instance-$1.log" 2>/dev/null | head -1)
  [[ -n $t ]] || fail "no $2 with $3=$4 in instance $1's log"
  date -d "$t" +%s%3N
}
t_rotated=$(log_ms 1 master_key_rotated version "$ver")
t_heard=$(log_ms 2 master_version_changed to "$ver")
t3=$(log_ms 3 master_version_changed to "$ver")
((t3 > t_heard)) && t_heard=$t3
listener_ms=$((t_heard - t_rotated))
((listener_ms >= 0)) || listener_ms=0
echo "listener_master_rotate_ms=$listener_ms" >"$tmp/listener.txt"
((listener_ms <= 1000)) || fail "instances 2 and 3 picked up master $ver $listener_ms ms after instance 1 rotated it (bound 1000 ms): the key listeners were late after the failover"
say "master $ver rotated on instance 1 right after the failover reached 2 and 3 through their key listeners in $listener_ms ms"
say "cache agreement: each change made on instance 1, polled on all three, under load"
"$client" agree "$ca" "$admin" "https://127.0.0.1:${ports[0]}" "https://127.0.0.1:${ports[1]}" \
  "https://127.0.0.1:${ports[2]}" >"$tmp/agree.txt"
wait_progress 20 30 "after the failover"
say "$(acked) writes acknowledged so far"

say "tenant key rotated and a rewrap of its records started on instance 2, then SIGKILL to instance 2 under load"
i2=https://127.0.0.1:${ports[1]}
curl -sS --fail-with-body --max-time 10 --cacert "$ca" -X POST -H "Authorization: Bearer $admin" \
  "$i2/api/tenants/load/keys/rotate" >/dev/null
curl -sS --fail-with-body --max-time 10 --cacert "$ca" -X POST -H "Authorization: Bearer $admin" \
  "$i2/api/tenants/load/rewrap" >/dev/null
kill -KILL "$(cat "$dir/run/instance-2.pid")"
wait_progress 20 15 "with instance 2 dead"
curl -s -o /dev/null --max-time 2 --cacert "$ca" "https://127.0.0.1:${ports[1]}/healthz" && fail "instance 2 still answers"
before=$(grep -c '/deploy' "$dir/log/instance-2.log" || true)
say "restarting instance 2"
"$src/scripts/cluster" start
for _ in $(seq 100); do
  (($(grep -c '/deploy' "$dir/log/instance-2.log" || true) > before)) && break
  sleep 0.2
done
(($(grep -c '/deploy' "$dir/log/instance-2.log" || true) > before)) || fail "HAProxy sent no write to the restarted instance 2 within 20 s"
say "instance 2 rejoined: HAProxy sends it writes again"
for _ in $(seq 150); do
  job=$(api GET /api/tenants/load/rewrap "$admin" || true)
  [[ $job == *'"state":"done"'* ]] && break
  sleep 0.2
done
[[ $job == *'"state":"done"'* && $job == *'"remaining":0'* ]] || fail "the rewrap that instance 2 started was not finished by the others: $job"
say "the rewrap instance 2 started and died in is done: $(sed -E 's/.*"done":([0-9]+).*/\1/' <<<"$job") records"

say "failback: the old primary re-attached (pg_rewind), then switched back to"
"$src/scripts/cluster" failback
wait_progress 20 30 "after the failback"
"$src/scripts/cluster" status

touch "$tmp/stop"
wait "$load_pid"
load_pid=
say "load stopped"
"$client" verify "$front" "$ca" "$tok" "$tmp/out" >"$tmp/verify.txt"

get() { sed -n "s/^$1=//p" "$2"; }
L=$tmp/load.txt V=$tmp/verify.txt A=$tmp/agree.txt
cat <<REPORT
test_cluster: writes acknowledged:              $(get acknowledged "$L")
test_cluster: writes found afterwards:          $(get found "$V") (servers listed: $(get servers "$V"), duplicates: $(get duplicates "$V"))
test_cluster: requests answered 503:            $(get answered_503 "$L") (without Retry-After: $(get answered_503_without_retry_after "$L"))
test_cluster: requests with no answer:          $(get no_answer "$L") (connection refused or reset; retried)
test_cluster: requests answered 429:            $(get answered_429 "$L")
test_cluster: longest unavailability:           $(get longest_unavailability_ms "$L") ms (first failed try of a write to its acknowledgement)
test_cluster: slowest request:                  $(get slowest_request_ms "$L") ms
test_cluster: token revoke on every instance:   $(get token_revoke_ms "$A") ms
test_cluster: tenant key rotate on every one:   $(get tenant_key_rotate_ms "$A") ms
test_cluster: master rotate on every instance:  $(get master_rotate_ms "$A") ms
test_cluster: tenant shred on every instance:   $(get tenant_shred_ms "$A") ms
test_cluster: master rotate, key listeners only: $(get listener_master_rotate_ms "$tmp/listener.txt") ms (right after the failover)
test_cluster: whole test:                       $(elapsed)
REPORT

n_acked=$(get acknowledged "$L")
((n_acked > 0)) || fail "no write acknowledged"
[[ $(get acknowledged "$V") == "$n_acked" ]] || fail "the client counted $n_acked acknowledged writes, the files hold $(get acknowledged "$V")"
[[ $(get found "$V") == "$n_acked" ]] || fail "$(get missing_or_wrong "$V") acknowledged writes are missing or unreadable"
[[ $(get duplicates "$V") == 0 ]] || fail "$(get duplicates "$V") writes are there twice"
[[ $(get servers "$V") == "$n_acked" ]] || fail "$(get servers "$V") servers for $n_acked acknowledged writes"
[[ $(get unresolved "$L") == 0 ]] || fail "$(get unresolved "$L") writes were never acknowledged"
[[ $(get unexpected "$L") == 0 ]] || fail "$(get unexpected "$L") answers were neither 201, 503 nor 429"
[[ $(get hung "$L") == 0 ]] || fail "$(get hung "$L") requests hung (no answer within 15 s)"
[[ $(get answered_503_without_retry_after "$L") == 0 ]] || fail "a 503 came without Retry-After"
# the database away for seconds: HAProxy still hands connections to the
# instances (its backup servers), which answer 503 with Retry-After
(($(get answered_503 "$L") > 0)) || fail "no 503 during the failover: the clients got closed connections instead"
((SECONDS - t0 < 180)) || fail "the test took $(elapsed), more than 3 minutes"
say "ok"
