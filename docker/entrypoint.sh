#!/bin/sh
# Runs one loraforge process by role: api (the HTTP API), worker (merges), bot (Discord) or all (one process).
# The role is noted for `loraforge healthcheck`. Anything else is passed to the CLI unchanged. The bin runs through
# its shebang, which sets glibc's malloc for large buffers (bin/loraforge.js). LORAFORGE_BIN and
# LORAFORGE_ROLE_FILE move the bin and the note (test/cli/entrypoint.test.ts runs this script outside a container).
set -eu
bin="${LORAFORGE_BIN:-/app/bin/loraforge.js}"
[ "$#" -eq 0 ] && set -- all
role="$1"
case "$role" in
  api) shift; set -- serve "$@" ;;
  worker | bot | all) ;;
  *) exec "$bin" "$@" ;;
esac
echo "$role" > "${LORAFORGE_ROLE_FILE:-/tmp/loraforge-role}"
exec "$bin" "$@"
