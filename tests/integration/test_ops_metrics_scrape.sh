#!/usr/bin/env bash
# A live scrape of /metrics passes `promtool check metrics` (the exposition
# format and Prometheus' naming rules), and holds what the alerts and
# dashboards need before any event: credvault_build_info, the process_*
# families, and the labelled counters the alerts use at 0.
set -euo pipefail
bin=${CREDVAULT_BIN:?} tmp=${CV_TEST_TMP:?}
fail() {
  echo "test_ops_metrics_scrape: $*" >&2
  echo "--- serve's log:" >&2; cat "$tmp/serve.log" >&2 || true
  exit 1
}
command -v promtool >/dev/null || fail "promtool is missing (scripts/install-deps installs prometheus)"
"$bin" migrate >/dev/null
"$bin" hsm init >/dev/null
umask 077
printf 'scrape-%s\n' "$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')" >"$tmp/metrics-token"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# one process: the unlabelled process_* figures below are compared with
# /proc of the pid started here (test_serve_workers covers the labelled
# per-worker ones)
CREDVAULT_WORKERS=1 CREDVAULT_TLS=off CREDVAULT_LISTEN=127.0.0.1:$port CREDVAULT_METRICS_TOKEN_FILE=$tmp/metrics-token \
  "$bin" serve 2>"$tmp/serve.log" &
server=$!
trap 'kill -TERM "$server" 2>/dev/null || true' EXIT
scrape() {
  curl -sS --fail -H "Authorization: Bearer $(head -1 "$tmp/metrics-token")" "http://127.0.0.1:$port/metrics"
}
for _ in $(seq 300); do scrape >"$tmp/metrics" 2>/dev/null && break; sleep 0.1; done
[[ -s $tmp/metrics ]] || fail "no scrape within 30 s"

out=$(promtool check metrics <"$tmp/metrics" 2>&1) || fail "promtool check metrics: $out"

has() { grep -qE "$1" "$tmp/metrics" || fail "the scrape lacks $1"; }
version=$("$bin" version --json)
commit=$(jq -r .commit <<<"$version")
has "^credvault_build_info\\{version=\"$(jq -r .version <<<"$version")\",commit=\"$commit\",build_type=\"[A-Za-z]+\",.*openssl=\"OpenSSL [0-9.]+.*libpq=\"[0-9.]+\".* 1\$"
for f in process_cpu_seconds_total process_resident_memory_bytes process_open_fds process_start_time_seconds \
  process_max_fds; do
  has "^$f [0-9.e+]+\$"
done
# plausible values, not just present ones
rss=$(awk '$1 == "process_resident_memory_bytes" { print $2 }' "$tmp/metrics")
awk -v r="$rss" 'BEGIN { exit !(r > 1000000) }' || fail "resident memory $rss bytes is implausible"
fds=$(awk '$1 == "process_open_fds" { print $2 }' "$tmp/metrics")
real_fds=$(($(ls "/proc/$server/fd" | wc -l)))
((fds > 3 && fds <= real_fds + 5 && fds >= real_fds - 5)) || fail "process_open_fds $fds, /proc says $real_fds"
start=$(awk '$1 == "process_start_time_seconds" { print int($2) }' "$tmp/metrics")
now=$(date +%s)
# The kernel's boot time (btime) that the start time is counted from is whole
# seconds and drifts from the wall clock as NTP adjusts it: a few seconds "in
# the future" is that drift, not a wrong start time.
((start > now - 120 && start <= now + 5)) || fail "process_start_time_seconds $start is not within the last 2 minutes ($now)"
# the alerts' labelled counters exist at 0 before their first event
has '^credvault_rate_limited_total\{class="read",scope="auth_failures"\} 0$'
has '^credvault_hsm_errors_total\{rv="CKR_DEVICE_ERROR"\} 0$'
has '^credvault_hsm_recoveries_total\{result="failed"\} 0$'
has '^credvault_audit_checkpoints_total\{result="error"\} 0$'
has '^credvault_db_errors_total\{category="connection_lost"\} 0$'
has '^credvault_key_usage_max_ratio [0-9.e+-]+$'
if grep -q 'credvault_key_usage_ratio_max' "$tmp/metrics"; then fail "the old name credvault_key_usage_ratio_max is still served"; fi
echo "test_ops_metrics_scrape: ok"
