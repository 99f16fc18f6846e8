# shellcheck shell=bash
# The PostgreSQL deployment of docs/deployment.rst, on this machine, for the
# topology tests: PgBouncer in transaction pooling mode in front of the CI
# server, and a hot standby of that server. Sourced by .ci/run; every function
# is idempotent (a second run finds what the first started and keeps it) and
# leaves the CI server itself as it was, but for one pg_hba.conf line that lets
# the standby replicate from 127.0.0.1.
#
#   start_pgbouncer    PgBouncer on 127.0.0.1:$PGBOUNCER_PORT -> 127.0.0.1:$PG_PORT
#   start_standby      a streaming hot standby on 127.0.0.1:$STANDBY_PORT
#   drop_pg_database NAME   drop a database on the CI server, whoever is connected
#
# PgBouncer and PostgreSQL refuse to run as root, so both run as the postgres
# user, in directories of their own outside the checkout (which may be under a
# home directory that user cannot enter).

PG_PORT=${KEYVAL_PG_PORT_PRIMARY:-5432}
PGBOUNCER_PORT=${KEYVAL_PGBOUNCER_PORT:-6432}
STANDBY_PORT=${KEYVAL_PG_REPLICA_PORT:-5433}
PGBOUNCER_DIR=/var/tmp/keyval-ci-pgbouncer
STANDBY_DIR=/var/tmp/keyval-ci-standby

pg_bindir() {
    local dir
    dir=$(pg_config --bindir 2>/dev/null) && [[ -x $dir/pg_ctl ]] && { echo "$dir"; return; }
    # Debian keeps the server binaries out of PATH; the newest version wins.
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [[ -x $dir/pg_ctl ]] && { echo "$dir"; return; }
    done
    return 1
}

as_postgres() { # run a command as the postgres user (as is when not root)
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_sql() { # port sql: one value, from database "postgres"
    psql -X -qAt -h 127.0.0.1 -p "$1" -U "${KEYVAL_PG_USER:-root}" -d postgres -c "$2"
}

ensure_deb_packages() { # install the Debian packages that are missing
    local pkg missing=()
    for pkg in "$@"; do
        [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == *'install ok installed'* ]] ||
            missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    echo "installing: ${missing[*]}"
    apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# -- PgBouncer -------------------------------------------------------------------

pgbouncer_up() {
    # The admin console answers only PgBouncer itself, and tells its mode.
    [[ $(psql -X -qAt -h 127.0.0.1 -p "$PGBOUNCER_PORT" -U "${KEYVAL_PG_USER:-root}" \
        -d pgbouncer -c 'SHOW CONFIG' 2>/dev/null | grep '^pool_mode|') == 'pool_mode|transaction'* ]]
}

start_pgbouncer() {
    ensure_deb_packages pgbouncer || return
    local user=${KEYVAL_PG_USER:-root}
    install -d -o postgres -g postgres -m 0755 "$PGBOUNCER_DIR"
    # Every database name goes to the CI server, so that the test runner can
    # CREATE its test database through the pooler like any other statement.
    # Transaction pooling: a server connection is a client's for one
    # transaction only, which is what the store must survive.
    cat >"$PGBOUNCER_DIR/pgbouncer.ini.new" <<EOF
[databases]
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $PGBOUNCER_DIR/userlist.txt
admin_users = $user
pool_mode = transaction
max_client_conn = 400
default_pool_size = 20
ignore_startup_parameters = extra_float_digits
logfile = $PGBOUNCER_DIR/pgbouncer.log
pidfile = $PGBOUNCER_DIR/pgbouncer.pid
EOF
    printf '"%s" ""\n' "$user" >"$PGBOUNCER_DIR/userlist.txt"
    mv "$PGBOUNCER_DIR/pgbouncer.ini.new" "$PGBOUNCER_DIR/pgbouncer.ini"
    chown postgres:postgres "$PGBOUNCER_DIR"/*
    local pid
    pid=$(cat "$PGBOUNCER_DIR/pgbouncer.pid" 2>/dev/null) || pid=""
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill -HUP "$pid" # running: re-read the (maybe changed) configuration
    else
        as_postgres /usr/sbin/pgbouncer -d -q "$PGBOUNCER_DIR/pgbouncer.ini" || return
    fi
    wait_for PgBouncer 30 pgbouncer_up || return
    /usr/sbin/pgbouncer --version | head -n 1
}

# -- the hot standby ----------------------------------------------------------------

standby_up() {
    [[ $(pg_sql "$STANDBY_PORT" "SELECT pg_is_in_recovery() AND EXISTS (SELECT FROM
        pg_stat_wal_receiver WHERE status = 'streaming')" 2>/dev/null) == t ]]
}

# Done waiting: streaming, or told by the primary that the WAL it needs to
# catch up is gone (no replication slot keeps it: a slot would keep WAL on
# the CI server for as long as the standby is down).
standby_streams_or_is_stale() {
    standby_up || grep -q 'has already been removed' "$STANDBY_DIR/server.log" 2>/dev/null
}

allow_replication() { # the CI server accepts replication connections from 127.0.0.1
    local hba
    hba=$(pg_sql "$PG_PORT" 'SHOW hba_file') || return
    if ! grep -Eq '^[[:space:]]*host[[:space:]]+replication[[:space:]]+all[[:space:]]+127\.0\.0\.1/32' "$hba"; then
        echo "allowing replication from 127.0.0.1 in $hba"
        printf '%s\n' '# keyval_backend CI (.ci/pg_topology.sh): the hot standby on this machine' \
            'host replication all 127.0.0.1/32 trust' >>"$hba"
        pg_sql "$PG_PORT" 'SELECT pg_reload_conf()' >/dev/null || return
    fi
}

start_standby() {
    local bin started=$SECONDS
    bin=$(pg_bindir) || { echo "no PostgreSQL server binaries (pg_ctl) found"; return 1; }
    if standby_up; then
        echo "the standby on port $STANDBY_PORT is streaming"
        return 0
    fi
    # A data directory that does not come up streaming (a stale copy, a crash
    # between runs, WAL the primary no longer has) is made anew: a base
    # backup of the CI server takes seconds.
    if [[ -f $STANDBY_DIR/PG_VERSION ]]; then
        if as_postgres "$bin/pg_ctl" -D "$STANDBY_DIR" -w -t 30 start \
            -l "$STANDBY_DIR/server.log" >/dev/null 2>&1 &&
            wait_for "the standby (existing)" 15 standby_streams_or_is_stale &&
            standby_up; then
            return 0
        fi
        as_postgres "$bin/pg_ctl" -D "$STANDBY_DIR" -m immediate stop >/dev/null 2>&1 || true
    fi
    allow_replication || return
    rm -rf "$STANDBY_DIR"
    install -d -o postgres -g postgres -m 0700 "$STANDBY_DIR"
    # -R: standby.signal and primary_conninfo; -X stream: the WAL of the
    # copy itself, so that it starts consistent.
    as_postgres "$bin/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U "${KEYVAL_PG_USER:-root}" \
        -D "$STANDBY_DIR" -X stream -R -c fast || return
    # A Debian cluster keeps its configuration in /etc: the copy has none. A
    # standby needs at least the primary's connection and worker limits.
    local name limits=""
    for name in max_connections max_worker_processes max_wal_senders \
        max_prepared_transactions max_locks_per_transaction; do
        limits+="$name = $(pg_sql "$PG_PORT" "SHOW $name")"$'\n'
    done
    cat >"$STANDBY_DIR/postgresql.conf" <<EOF
# keyval_backend CI: a hot standby of 127.0.0.1:$PG_PORT (.ci/pg_topology.sh)
listen_addresses = '127.0.0.1'
port = $STANDBY_PORT
unix_socket_directories = '$STANDBY_DIR'
hot_standby = on
hot_standby_feedback = on
shared_buffers = 32MB
logging_collector = off
$limits
EOF
    cat >"$STANDBY_DIR/pg_hba.conf" <<EOF
local all all trust
host all all 127.0.0.1/32 trust
EOF
    : >"$STANDBY_DIR/pg_ident.conf"
    chown postgres:postgres "$STANDBY_DIR"/{postgresql,pg_hba,pg_ident}.conf
    as_postgres "$bin/pg_ctl" -D "$STANDBY_DIR" -w -t 60 start -l "$STANDBY_DIR/server.log" ||
        { tail -n 20 "$STANDBY_DIR/server.log"; return 1; }
    wait_for "the standby" 60 standby_up || return
    echo "standby made in $((SECONDS - started))s"
}

drop_pg_database() { # name
    PGOPTIONS="-c client_min_messages=warning" \
        pg_sql "$PG_PORT" "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null
}
