#!/bin/sh
# postfach-docker-entry COMMAND [ARG...]: the entry of every Postfach
# container of docker-compose.yml.  Reads the database password from the
# file that POSTFACH_DB_PASSWORD_FILE names (a compose secret) into libpq's
# PGPASSWORD, so that it appears neither in argv nor in the compose file,
# and runs COMMAND.  When the file cannot be read or is empty it stops with
# a message instead, before COMMAND runs (libpq would otherwise try without
# a password and fail later with a less helpful error).
set -eu
me=postfach-docker-entry
file=${POSTFACH_DB_PASSWORD_FILE:-}
if [ -z "$file" ]; then
    echo "$me: POSTFACH_DB_PASSWORD_FILE is not set" >&2
    exit 1
fi
if [ $# -eq 0 ]; then
    echo "$me: no command" >&2
    exit 2
fi
# an assignment's status is that of its command substitution
if ! pw=$(cat -- "$file"); then
    echo "$me: cannot read the database password from $file (is the secret there?)" >&2
    exit 1
fi
if [ -z "$pw" ]; then
    echo "$me: the database password file $file is empty" >&2
    exit 1
fi
PGPASSWORD=$pw
export PGPASSWORD
unset pw
exec "$@"
