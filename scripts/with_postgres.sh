#!/usr/bin/env bash
# Runs a command against a throw-away PostgreSQL server:
#
#     bash scripts/with_postgres.sh cargo test -p riskserve-store
#
# Installs PostgreSQL from Debian when its server programs are missing (apt-get, with `sudo -n` when not root),
# creates a cluster in a temporary folder (as a non-root user: `postgres`, which Debian's package creates, or
# `riskserve-pg`), starts it on a free loopback port with its sockets in that folder, creates a database with a
# linguistic (ICU en-US) collation where the server supports one (so that tests prove the schema's byte-wise "C"
# collation rather than inheriting it), exports RISKSERVE_TEST_POSTGRES_URL=postgres://USER:PASSWORD@127.0.0.1:PORT/DB,
# runs the command, then stops and removes the cluster, whatever happened, and exits with the command's status.
set -euo pipefail

say() { echo "with_postgres: $*" >&2; }

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGUMENT...]" >&2
    exit 2
fi

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        say "need root to run: $* (no sudo)"
        return 1
    fi
}

# The folder of initdb and pg_ctl: on PATH, else the newest of Debian's /usr/lib/postgresql/<version>/bin.
find_server_bin() {
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
        echo "$dir"
        return 0
    fi
    return 1
}

if ! bin=$(find_server_bin); then
    say "installing PostgreSQL from Debian (apt-get install -y postgresql)"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y -q postgresql >/dev/null; then
        say "refreshing the package lists (apt-get update) and trying again"
        as_root apt-get update -q >/dev/null
        as_root apt-get install -y -q postgresql >/dev/null
    fi
    bin=$(find_server_bin) || { say "no initdb/pg_ctl after installing postgresql"; exit 1; }
fi
say "using $("$bin/postgres" --version) from $bin"
psql="$bin/psql"
[ -x "$psql" ] || psql=$(command -v psql)

# initdb refuses to run as root: run the server as an unprivileged user.
run_as=()
if [ "$(id -u)" -eq 0 ]; then
    if id -u postgres >/dev/null 2>&1; then
        pg_user=postgres
    else
        pg_user=riskserve-pg
        if ! id -u "$pg_user" >/dev/null 2>&1; then
            say "creating the system user $pg_user to run the server"
            useradd --system --no-create-home --shell /usr/sbin/nologin "$pg_user"
        fi
    fi
    run_as=(runuser -u "$pg_user" --)
    say "running the server as $pg_user"
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/riskserve-pg.XXXXXX")
chmod 700 "$dir"
if [ "${#run_as[@]}" -gt 0 ]; then
    chown "$pg_user" "$dir"
fi
data="$dir/data"
started=0

cleanup() {
    local status=$?
    if [ "$started" -eq 1 ]; then
        say "stopping the server"
        "${run_as[@]}" "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    say "removing $dir"
    rm -rf "$dir"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

user=riskserve
password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
database=riskserve_test
printf '%s\n' "$password" >"$dir/password"
if [ "${#run_as[@]}" -gt 0 ]; then
    chown "$pg_user" "$dir/password"
fi
chmod 600 "$dir/password"

say "creating a cluster in $data (superuser $user, password authentication over TCP)"
"${run_as[@]}" "$bin/initdb" -D "$data" -U "$user" --pwfile="$dir/password" -E UTF8 --locale=C.UTF-8 \
    --auth-host=scram-sha-256 --auth-local=trust >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
rm -f "$dir/password"

# A free port: ask the kernel for one, else probe from a random start; pg_ctl failing on a taken port is retried.
free_port() {
    local port
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    port=$((20000 + RANDOM % 20000))
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
    done
    echo "$port"
}

for attempt in 1 2 3 4 5; do
    port=$(free_port)
    say "starting the server on 127.0.0.1:$port (sockets in $dir)"
    if "${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off" \
        start >/dev/null; then
        started=1
        break
    fi
    say "the server did not start (attempt $attempt):"
    tail -n 5 "$dir/server.log" >&2 || true
done
[ "$started" -eq 1 ] || { say "giving up: the server does not start"; exit 1; }

sql() { "${run_as[@]}" "$psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U "$user" -d postgres -c "$1"; }
if sql "CREATE DATABASE $database TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'" \
    2>/dev/null; then
    say "created the database $database (ICU en-US collation: text sorts linguistically unless a column says \"C\")"
else
    sql "CREATE DATABASE $database TEMPLATE template0 ENCODING 'UTF8'"
    say "created the database $database (this server has no ICU collation; it sorts as its locale, C.UTF-8)"
fi

export RISKSERVE_TEST_POSTGRES_URL="postgres://$user:$password@127.0.0.1:$port/$database"
# Tests that take the server away and bring it back (stop | start) run this.
cat > "$dir/ctl.sh" <<CTL
#!/usr/bin/env bash
case "\$1" in
    stop) ${run_as[*]} "$bin/pg_ctl" -D "$data" -m fast -w stop > /dev/null ;;
    start) ${run_as[*]} "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \\
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off" start > /dev/null ;;
    *) echo "usage: ctl.sh stop|start" >&2; exit 2 ;;
esac
CTL
chmod +x "$dir/ctl.sh"
export RISKSERVE_TEST_POSTGRES_CTL="$dir/ctl.sh"
say "RISKSERVE_TEST_POSTGRES_URL=postgres://$user:<password>@127.0.0.1:$port/$database; running: $*"
set +e
"$@"
status=$?
set -e
say "the command exited with status $status"
exit "$status"
