#!/usr/bin/env bash
# Start-up messages say what to fix, with the real binary: an invalid libpq
# option keeps libpq's own reason, an unreachable database names the host and
# port tried and libpq's reason (never the password, from the URL or from
# CREDVAULT_DATABASE_PASSWORD_FILE), and a PKCS#11 module that does not load
# or initialise names the module's path.
set -euo pipefail
bin=${CREDVAULT_BIN:?} tmp=${CV_TEST_TMP:?}
secret=pw-$RANDOM-s3cr3t
fails=0
check() { # NAME LOG WANT... : every WANT in LOG, the password nowhere
  local name=$1 log=$2
  shift 2
  for want in "$@"; do
    grep -qF -- "$want" "$log" || { echo "test_startup_messages: $name: no '$want' in: $(cat "$log")" >&2; fails=1; }
  done
  if grep -qF -- "$secret" "$log"; then
    echo "test_startup_messages: $name: the password is in the message: $(cat "$log")" >&2
    fails=1
  fi
}
run() { # LOG DATABASE_URL COMMAND...: must fail, within the deadline
  local log=$1 url=$2 rc=0
  shift 2
  # migrate connects with the owner's URL, serve with the service's: both get it
  timeout 60 env CREDVAULT_DATABASE_URL="$url" CREDVAULT_DATABASE_OWNER_URL="$url" "$@" >"$log" 2>&1 || rc=$?
  if ((rc == 0 || rc == 124)); then
    echo "test_startup_messages: '$*' exited $rc, not a start-up failure: $(cat "$log")" >&2
    fails=1
  fi
}
# a port nothing listens on: bound, then released
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

for cmd in serve migrate; do
  # an option libpq does not know: its own sentence
  run "$tmp/$cmd-option.log" "host=127.0.0.1 port=$port bogus=1 password=$secret" "$bin" "$cmd"
  check "$cmd, unknown option" "$tmp/$cmd-option.log" 'not a valid libpq connection string' \
    'invalid connection option "bogus"'
  # a malformed URI whose broken token is the password
  run "$tmp/$cmd-uri.log" "postgresql://credvault_app:${secret}%zz@127.0.0.1:$port/credvault" "$bin" "$cmd"
  check "$cmd, malformed URI" "$tmp/$cmd-uri.log" 'invalid percent-encoded token'
  # nothing listens there: which host and port, and why
  run "$tmp/$cmd-down.log" "postgresql://credvault_app:$secret@127.0.0.1:$port/credvault" "$bin" "$cmd"
  check "$cmd, unreachable (URI)" "$tmp/$cmd-down.log" 'database unavailable' "\"127.0.0.1\", port $port" \
    'Connection refused'
  (umask 077 && printf '%s\n' "$secret" >"$tmp/db-password")
  run "$tmp/$cmd-down-file.log" "host=127.0.0.1 port=$port user=credvault_app dbname=credvault" \
    env CREDVAULT_DATABASE_PASSWORD_FILE="$tmp/db-password" "$bin" "$cmd"
  check "$cmd, unreachable (password file)" "$tmp/$cmd-down-file.log" "\"127.0.0.1\", port $port" 'Connection refused'
done

# the PKCS#11 module: a file that is no shared object, then a module that loads
# but does not initialise (SoftHSM2 without its configuration)
printf 'not a library\n' >"$tmp/not-a-module.so"
run "$tmp/module.log" "${CREDVAULT_DATABASE_URL:?}" env CREDVAULT_PKCS11_MODULE="$tmp/not-a-module.so" "$bin" serve
check "module that does not load" "$tmp/module.log" "$tmp/not-a-module.so"
module=${CREDVAULT_PKCS11_MODULE:?}
run "$tmp/module-init.log" "$CREDVAULT_DATABASE_URL" env SOFTHSM2_CONF="$tmp/no-such-softhsm2.conf" "$bin" serve
check "module that does not initialise" "$tmp/module-init.log" "PKCS#11 module $module" 'C_Initialize failed'
run "$tmp/module-missing.log" "$CREDVAULT_DATABASE_URL" env CREDVAULT_PKCS11_MODULE="$tmp/no-such-module.so" "$bin" hsm status
check "module that is missing" "$tmp/module-missing.log" "$tmp/no-such-module.so"

if ((fails)); then exit 1; fi
echo "test_startup_messages: ok"
