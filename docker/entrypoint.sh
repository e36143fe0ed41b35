#!/bin/sh
# Runs one loraforge process by role: api (the HTTP API), worker (merges), bot (Discord) or all (one process).
# The role is noted for `loraforge healthcheck`. Anything else is passed to the CLI unchanged. The bin runs through
# its shebang, which sets glibc's malloc for large buffers (bin/loraforge.js).
set -eu
[ "$#" -eq 0 ] && set -- all
role="$1"
case "$role" in
  api) shift; set -- serve "$@" ;;
  worker | bot | all) ;;
  *) exec /app/bin/loraforge.js "$@" ;;
esac
echo "$role" > /tmp/loraforge-role
exec /app/bin/loraforge.js "$@"
