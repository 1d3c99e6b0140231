#!/usr/bin/env bash
# CREDVAULT_WORKERS=2: two worker processes under a supervisor serve one port.
# Both serve; every scrape, whichever worker answers it, counts every
# worker's requests; a worker killed with SIGKILL while a client keeps
# sending costs at most the requests in flight on it, is replaced within a
# bound, and the replacement serves; SIGTERM to the supervisor stops all and
# exits 0; rate-limit buckets are one set across workers; each worker's
# secret memory, the regions inherited from the supervisor too, is locked.
set -euo pipefail
bin=${CREDVAULT_BIN:?} tmp=${CV_TEST_TMP:?}
server='' client=''
fail() {
  echo "test_serve_workers: $*" >&2
  echo "--- serve's log:" >&2; tail -60 "$tmp/serve.log" >&2 || true
  exit 1
}
stop_server() {
  if [[ -n $client ]]; then touch "$tmp/client.stop"; kill "$client" 2>/dev/null || true; fi
  if [[ -n $server ]]; then kill -TERM "$server" 2>/dev/null || true; fi
}
trap stop_server EXIT
"$bin" migrate >/dev/null
"$bin" hsm init >/dev/null
admin=$("$bin" token create --name platform-admin --role admin 2>/dev/null)
[[ $admin == cvt_* ]] || fail "no admin token"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # LOG [NAME=value ...]: serve with two workers; waits for the supervisor's "serving"
  local log=$1
  shift
  port=$(free_port)
  env CREDVAULT_WORKERS=2 CREDVAULT_TLS=off CREDVAULT_LISTEN=127.0.0.1:$port "$@" "$bin" serve 2>"$log" &
  server=$!
  for _ in $(seq 600); do
    grep -q '"event":"serving"' "$log" && return 0
    kill -0 "$server" 2>/dev/null || { cp "$log" "$tmp/serve.log"; fail "serve exited during start"; }
    sleep 0.1
  done
  cp "$log" "$tmp/serve.log"
  fail "the supervisor did not say serving within 60 s"
}
children() { cat "/proc/$server/task/$server/children" 2>/dev/null | tr ' ' '\n' | grep . | sort -n || true; }
# GET PATH with a new connection each time (SO_REUSEPORT spreads connections, not requests)
get() { # the probes take no token; /api paths the admin's
  local auth=()
  [[ $1 == /api/* ]] && auth=(-H "Authorization: Bearer $admin")
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 "${auth[@]}" "http://127.0.0.1:$port$1" || true
}
scrape() { curl -sS --fail --max-time 5 -H "Authorization: Bearer $admin" "http://127.0.0.1:$port/metrics"; }
metric() { # FILE SERIES (exact, with labels): its value, 0 when absent
  awk -v s="$2" '$1 == s { v = $2 } END { print v + 0 }' "$1"
}
http_total() { awk '/^credvault_http_requests_total\{/ { n += $2 } END { print n + 0 }' "$1"; }

# limits lifted: this run counts requests, the last one tests the limits
start "$tmp/serve.log" CREDVAULT_RATE_ADMIN_PER_S=0 CREDVAULT_RATE_READ_PER_S=0 CREDVAULT_RATE_WRITE_PER_S=0
mapfile -t pids < <(children)
((${#pids[@]} == 2)) || fail "the supervisor has ${#pids[@]} children, not 2: ${pids[*]}"
for p in "${pids[@]}"; do
  grep -q "\"event\":\"worker_started\",\"worker\":\"[01]\",\"pid\":\"$p\"" "$tmp/serve.log" ||
    fail "child $p is not a worker the supervisor logged"
done

# --- each worker's secret memory is locked, the inherited regions too --------
# (fork drops memory locks: the supervisor's TLS key and PIN pages arrive unlocked)
asan=$(nm -D "$bin" | grep -c ' __asan_init' || true) # grep -c reads it all: no SIGPIPE under pipefail
if ((asan > 0)); then
  # AddressSanitizer builds take secret blocks from malloc, unlocked by design:
  # each worker must then say so rather than claim locked memory
  (($(grep -c '"secret memory could not be locked"' "$tmp/serve.log") >= ${#pids[@]})) ||
    fail "an AddressSanitizer build's workers did not each report unlocked secret memory"
else
  for p in "${pids[@]}"; do
    lck=$(awk '/^VmLck:/ { print $2 }' "/proc/$p/status")
    ((lck > 0)) || fail "worker $p locks no memory (VmLck $lck kB)"
    # every dump-excluded private anonymous mapping is secret memory (the kernel's
    # [vvar] is excluded too, but is no such mapping) and must be locked
    unlocked=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { r = ($2 == "rw-p" && NF == 5) ? $1 : "" }
      /^VmFlags:/ && r != "" && / dd/ && !/ lo/ { print r }' "/proc/$p/smaps")
    [[ -z $unlocked ]] || fail "worker $p has dump-excluded memory that is not locked: $unlocked"
  done
  if grep -q '"secret memory could not be locked"' "$tmp/serve.log"; then fail "a worker could not lock its secret memory"; fi
fi

# --- both workers serve, and every scrape counts both -------------------------
sent=0
for _ in $(seq 40); do
  [[ $(get /healthz) == 200 ]] || fail "GET /healthz failed"
  sent=$((sent + 1))
done
for i in $(seq 6); do
  sleep 0.2 # a request is counted once its response went out: let the last one's count land
  scrape >"$tmp/m$i" || fail "scrape $i failed"
  # a registry per process would show only the answering worker's share
  seen=$(http_total "$tmp/m$i")
  ((seen == sent)) || fail "scrape $i counts $seen requests, $sent were answered"
  sent=$((sent + 1))
done
w0=$(metric "$tmp/m6" 'credvault_worker_requests_total{worker="0"}')
w1=$(metric "$tmp/m6" 'credvault_worker_requests_total{worker="1"}')
((w0 > 0 && w1 > 0)) || fail "requests were not served by both workers (worker 0: $w0, worker 1: $w1)"
((w0 + w1 == sent - 1)) || fail "per-worker counts $w0 + $w1, not $((sent - 1))"
for f in process_resident_memory_bytes process_open_fds process_cpu_seconds_total process_start_time_seconds; do
  for w in 0 1; do
    v=$(metric "$tmp/m6" "$f{worker=\"$w\"}")
    [[ $v != 0 ]] || fail "$f{worker=\"$w\"} is missing or 0"
  done
done
[[ $(grep -c '^credvault_build_info{' "$tmp/m6") == 1 ]] || fail "credvault_build_info is not there exactly once"
out=$(promtool check metrics <"$tmp/m6" 2>&1) || fail "promtool check metrics: $out"
[[ $(metric "$tmp/m6" credvault_worker_restarts_total) == 0 ]] || fail "a restart was counted before any"

# --- SIGKILL one worker while a client keeps sending --------------------------
victim=${pids[0]}
slot=$(grep -o "\"worker\":\"[01]\",\"pid\":\"$victim\"" "$tmp/serve.log" | head -1 | sed 's/.*"worker":"\([01]\)".*/\1/')
(
  # one request at a time, each on a new connection; a failure is retried
  # once on a new connection; records first attempts and retries. It runs
  # until told to stop (or 120 s), so a slow machine sends fewer, not none.
  end=$((SECONDS + 120))
  while ((SECONDS < end)) && [[ ! -e $tmp/client.stop ]]; do
    code=$(get /readyz)
    if [[ $code == 200 ]]; then echo ok; else
      echo "failed $code"
      code=$(get /readyz)
      [[ $code == 200 ]] && echo retried-ok || echo "retry-failed $code"
    fi
  done
) >"$tmp/client.log" &
client=$!
answers() { wc -l <"$tmp/client.log"; }
# some answers before the kill
for _ in $(seq 600); do (($(answers) >= 5)) && break; sleep 0.1; done
(($(answers) >= 5)) || fail "the client got fewer than 5 answers in 60 s before the kill"
kill -KILL "$victim"
killed_at=$(date +%s%N)
replacement=
for _ in $(seq 150); do
  for p in $(children); do
    if [[ $p != "$victim" && $p != "${pids[1]}" ]]; then replacement=$p; fi
  done
  [[ -n $replacement ]] && grep -q "\"event\":\"worker_serving\",\"worker\":\"$slot\"" <(grep -A1000 "\"pid\":\"$replacement\"" "$tmp/serve.log") && break
  sleep 0.1
done
[[ -n $replacement ]] || fail "no replacement for worker $victim within 15 s"
took_ms=$((($(date +%s%N) - killed_at) / 1000000))
((took_ms < 15000)) || fail "the replacement took $took_ms ms to serve"
# and some after the replacement serves
after=$(($(answers) + 5))
for _ in $(seq 600); do (($(answers) >= after)) && break; sleep 0.1; done
touch "$tmp/client.stop"
wait "$client"
client=
ok=$(grep -c '^ok$' "$tmp/client.log" || true)
failed=$(grep -c '^failed' "$tmp/client.log" || true)
lost=$(grep -c '^retry-failed' "$tmp/client.log" || true)
((ok >= 10)) || fail "the client got only $ok answers around the kill (client log: $(sort "$tmp/client.log" | uniq -c | tr '\n' ';'))"
# one request in flight at a time: the one on the killed worker's connection,
# and one that reached its socket before the supervisor closed its queue
((failed <= 2)) || fail "$failed requests failed around the kill (client log: $(sort "$tmp/client.log" | uniq -c | tr '\n' ';'))"
((lost == 0)) || fail "$lost requests failed again on a new connection"
kill -0 "${pids[1]}" || fail "the other worker died too"
grep -q "\"event\":\"worker_exited\",\"worker\":\"$slot\",\"pid\":\"$victim\",\"status\":\"killed by signal 9" "$tmp/serve.log" ||
  fail "the supervisor did not log the kill"

# the replacement serves: only it can add to its slot's count now
scrape >"$tmp/m-base" || fail "scrape after the restart failed"
base=$(metric "$tmp/m-base" "credvault_worker_requests_total{worker=\"$slot\"}")
grew=0
for _ in $(seq 60); do
  get /healthz >/dev/null
  scrape >"$tmp/m-after" || fail "scrape after the restart failed"
  if (($(metric "$tmp/m-after" "credvault_worker_requests_total{worker=\"$slot\"}") > base)); then grew=1; break; fi
done
((grew)) || fail "the replacement in slot $slot served nothing in 60 requests"
[[ $(metric "$tmp/m-after" "credvault_worker_up{worker=\"$slot\"}") == 1 ]] || fail "worker $slot is not up"
[[ $(metric "$tmp/m-after" credvault_worker_restarts_total) == 1 ]] || fail "credvault_worker_restarts_total is not 1"

# --- SIGTERM to the supervisor stops every worker, exit 0 ---------------------
mapfile -t pids < <(children)
kill -TERM "$server"
rc=0
wait "$server" || rc=$?
server=
((rc == 0)) || fail "serve exited $rc on SIGTERM"
for p in "${pids[@]}"; do
  if kill -0 "$p" 2>/dev/null; then fail "worker $p outlived the supervisor"; fi
done
grep -q '"event":"supervisor_stopped"' "$tmp/serve.log" || fail "no supervisor_stopped"

# --- one set of rate-limit buckets across workers ------------------------------
start "$tmp/serve-limits.log" CREDVAULT_RATE_ADMIN_PER_S=1 CREDVAULT_RATE_ADMIN_BURST=6 CREDVAULT_RATE_ADDRESS_FACTOR=0
t0=$SECONDS
codes=()
for _ in $(seq 20); do codes+=("$(get /api/tenants)"); done
elapsed=$((SECONDS - t0 + 1))
n200=$(printf '%s\n' "${codes[@]}" | grep -c '^200$' || true)
n429=$(printf '%s\n' "${codes[@]}" | grep -c '^429$' || true)
((n200 + n429 == 20)) || fail "answers other than 200 and 429: ${codes[*]}"
# a burst of 6 plus 1 a second: per-worker buckets would grant up to 12 plus 2 a second
((n200 >= 6 && n200 <= 6 + elapsed)) || fail "$n200 of 20 admitted in ${elapsed} s with a burst of 6 and 1/s: ${codes[*]}"
kill -TERM "$server"
rc=0
wait "$server" || rc=$?
server=
((rc == 0)) || fail "serve exited $rc on SIGTERM (limits run)"
echo "test_serve_workers: ok (replacement served after $took_ms ms; $failed of $((ok + failed)) requests failed at the kill)"
