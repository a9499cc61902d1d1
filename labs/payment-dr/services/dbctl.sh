#!/bin/sh
# dbctl.sh COMMAND NODE: the db service, a real PostgreSQL 15 with streaming replication.
# NODE is dc1-srv or dc2-srv; runs on that node (`exec:` lines, `drill lab exec`) or from its
# network namespace (a runbook's command step `from: lab:...:NODE`).
#   init-primary NODE   a primary from the lab's template cluster (made once per lab up)
#   init-standby NODE   a standby of the other node's primary, from the same template
#   promote NODE        the standby becomes primary (pg_ctl promote)
#   stop NODE           fast shutdown (fences an old primary)
#   rebuild NODE        wipe NODE's cluster, pg_basebackup it from the other node (the primary),
#                       start it as a standby and wait until it streams
#   start NODE          start NODE's existing cluster again (undoes stop)
#   role NODE [EXPECT]  print primary | standby | down; with EXPECT, exit 1 when it differs
# The data lives under /run/drill/lab/payment-dr/NODE/pg and goes away with `drill lab down`.
set -eu
PGBIN=/usr/lib/postgresql/15/bin
LAB=/run/drill/lab/payment-dr
cmd=${1:?usage: dbctl.sh COMMAND NODE}
node=${2:?usage: dbctl.sh COMMAND NODE}
case "$node" in
dc1-srv) addr=192.0.2.23 other=192.0.2.33 ;;
dc2-srv) addr=192.0.2.33 other=192.0.2.23 ;;
*) echo "dbctl.sh: unknown node '$node'" >&2; exit 2 ;;
esac
dir=$LAB/$node/pg
data=$dir/data

as_pg() { runuser -u postgres -- "$@"; }
sql() { as_pg "$PGBIN/psql" -h "$dir/sock" -U postgres -d postgres -Atqc "$1" 2>/dev/null; }

template() {
    # One initdb per lab (~2 s), shared by both nodes: a cold copy of a cluster that has
    # never run is a valid base backup, so the standby needs no pg_basebackup at lab up.
    tpl=$LAB/pg-template
    exec 9>"$LAB/pg-template.lock"
    flock 9
    if [ ! -f "$tpl/PG_VERSION" ]; then
        rm -rf "$tpl"
        install -d -o postgres -g postgres -m 700 "$tpl"
        as_pg "$PGBIN/initdb" -D "$tpl" -A trust -U postgres -N >/dev/null
        cat >>"$tpl/postgresql.conf" <<CONF
# payment-dr lab: small, fast, replicated; durability is not what this lab tests.
port = 5432
wal_level = replica
max_wal_senders = 4
wal_keep_size = 64MB
hot_standby = on
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 16MB
max_connections = 60
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 200ms
CONF
        cat >>"$tpl/pg_hba.conf" <<HBA
# payment-dr lab only: the server VLAN is trusted.
host all all 192.0.2.0/24 trust
host replication all 192.0.2.0/24 trust
HBA
        # Single-user mode: one statement per line.
        echo "CREATE TABLE auths (id bigserial PRIMARY KEY, at timestamptz DEFAULT now(), amount bigint NOT NULL, served_by text NOT NULL);" |
            as_pg "$PGBIN/postgres" --single -D "$tpl" postgres >/dev/null
    fi
    flock -u 9
}

fresh_from_template() {
    rm -rf "$dir"
    install -d -o postgres -g postgres -m 700 "$dir" "$dir/sock"
    cp -a "$LAB/pg-template" "$data"
}

start() {
    as_pg "$PGBIN/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 20 -o \
        "-c listen_addresses=$addr -c unix_socket_directories=$dir/sock -c cluster_name=db@$node" \
        start >/dev/null
}

running() { [ -f "$data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; }

wait_streaming() {
    i=0
    until [ "$(sql 'SELECT status FROM pg_stat_wal_receiver')" = streaming ]; do
        i=$((i + 1))
        [ $i -le 200 ] || { echo "dbctl.sh: $node does not stream from $other" >&2; exit 1; }
        sleep 0.1
    done
}

case "$cmd" in
init-primary)
    template
    fresh_from_template
    start
    ;;
init-standby)
    template
    fresh_from_template
    touch "$data/standby.signal"
    echo "primary_conninfo = 'host=$other user=postgres'" >>"$data/postgresql.auto.conf"
    start
    ;;
promote)
    as_pg "$PGBIN/pg_ctl" -D "$data" -w -t 20 promote >/dev/null
    ;;
start)
    if ! running; then start; fi
    ;;
stop)
    if running; then as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 20 stop >/dev/null; fi
    ;;
rebuild)
    if running; then as_pg "$PGBIN/pg_ctl" -D "$data" -m fast -w -t 20 stop >/dev/null; fi
    rm -rf "$dir"
    install -d -o postgres -g postgres -m 700 "$dir" "$dir/sock"
    as_pg "$PGBIN/pg_basebackup" -h "$other" -U postgres -D "$data" -X stream -c fast -R
    start
    wait_streaming
    ;;
wait-streaming)
    wait_streaming
    ;;
role)
    role=down
    if running; then
        case "$(sql 'SELECT pg_is_in_recovery()')" in
        t) role=standby ;;
        f) role=primary ;;
        esac
    fi
    echo "db@$node $role"
    if [ -n "${3:-}" ] && [ "$3" != "$role" ]; then
        echo "dbctl.sh: db@$node is $role, expected $3" >&2
        exit 1
    fi
    ;;
*)
    echo "dbctl.sh: unknown command '$cmd'" >&2
    exit 2
    ;;
esac
