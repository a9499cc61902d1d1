#!/bin/sh
# settlectl.sh COMMAND: where the settlement service runs. Runs from the host (it enters the
# nodes' namespaces itself), as a runbook's command step or by hand.
#   move dc2|dc1   stop settlement where it runs, move its address 192.0.2.27 to the other
#                  server over the stretched VLAN (the /32 on eth1), point both edges'
#                  permanent ARP entries for it at the new server, announce it (gratuitous
#                  ARP), start settlement there with the same command line as the lab's exec
#                  line, and wait until 192.0.2.27:8300 answers settlement@NODE from both
#                  servers. Moving to where it already is: "already on NODE", exit 0.
#   where          print the server that holds 192.0.2.27 (dc1-srv or dc2-srv)
# Exit 1 when the lab is not up or the move does not complete; 2 on bad usage.
set -eu
LAB=payment-dr
RUN=/run/drill/lab/$LAB
ADDR=192.0.2.27
PORT=8300
START="sh /etc/frr/svc/start.sh settlement python3 /etc/frr/svc/settlement.py $ADDR $PORT"

usage() { echo "usage: settlectl.sh move dc1|dc2 | where" >&2; exit 2; }
fail() { echo "settlectl.sh: $*" >&2; exit 1; }
ns() { echo "$LAB-$1"; }
# The servers' fixed MACs on the VLAN (their exec lines; services/neigh.sh uses the same).
mac() { case $1 in dc1-srv) echo 02:00:c0:00:02:0b ;; dc2-srv) echo 02:00:c0:00:02:0c ;; esac; }

holder() {
    # The node's namespace holder, checked to be in the node's netns (a stale pid file
    # after a crashed lab must not make us enter some other process's namespaces).
    pid=$(cat "$RUN/$1/holder.pid" 2>/dev/null) || fail "node $1 is not running (lab down?)"
    [ "$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null)" = "$(stat -L -c %i "/run/netns/$(ns "$1")")" ] ||
        fail "node $1 is not running (lab down?)"
    echo "$pid"
}

has_addr() { [ -n "$(ip -n "$(ns "$1")" -o addr show dev eth1 to "$ADDR/32")" ]; }

where() {
    for node in dc1-srv dc2-srv; do
        if has_addr "$node"; then echo "$node"; return 0; fi
    done
    return 1
}

pid_of() {
    # settlement's pid on NODE, if it runs (pid file from start.sh, under the node's /run/frr).
    pid=$(cat "$RUN/$1/run/settlement.pid" 2>/dev/null) || return 1
    grep -q settlement.py "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

stop() {
    if pid=$(pid_of "$1"); then
        kill "$pid"
        i=0
        while [ -d "/proc/$pid" ]; do
            i=$((i + 1))
            [ $i -le 50 ] || { kill -9 "$pid" 2>/dev/null || true; break; }
            sleep 0.1
        done
    fi
    rm -f "$RUN/$1/run/settlement.pid"
}

garp() {
    # Gratuitous ARP, request and reply forms, from NODE's eth1 (no arping on the nodes):
    # any host that cached the old server's MAC for the address takes the new one.
    ip netns exec "$(ns "$1")" python3 - eth1 "$ADDR" <<'PY'
import socket, struct, sys
iface, ip = sys.argv[1], socket.inet_aton(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0x0806))
mac, bcast = s.getsockname()[4], b"\xff" * 6
for op, target in ((1, b"\0" * 6), (2, bcast)):
    arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, mac, ip, target, ip)
    s.send(bcast + mac + b"\x08\x06" + arp)
PY
}

answers() {
    # settlement's who-served-it answer, asked from FROM's network namespace.
    ip netns exec "$(ns "$1")" curl -s -m 1 "http://$ADDR:$PORT/whoami" 2>/dev/null || true
}

move() {
    to=$1 from=$2
    holder "$to" >/dev/null
    holder "$from" >/dev/null
    if [ "$(where || true)" = "$to" ] && pid_of "$to" >/dev/null &&
        [ "$(answers "$to")" = "settlement@$to" ]; then
        echo "settlement: already on $to"
        return 0
    fi
    stop "$from"
    if has_addr "$from"; then ip -n "$(ns "$from")" addr del "$ADDR/32" dev eth1; fi
    if ! has_addr "$to"; then ip -n "$(ns "$to")" addr add "$ADDR/32" dev eth1; fi
    for edge in dc1-edge dc2-edge; do
        ip -n "$(ns "$edge")" neigh replace "$ADDR" lladdr "$(mac "$to")" dev vrrp4-1 nud permanent
    done
    garp "$to"
    if ! pid_of "$to" >/dev/null; then
        # shellcheck disable=SC2086 # START is the exec line, split as the lab splits it
        nsenter -t "$(holder "$to")" -m -u -n -- $START
    fi
    i=0
    until [ "$(answers "$to")" = "settlement@$to" ] && [ "$(answers "$from")" = "settlement@$to" ]; do
        i=$((i + 1))
        [ $i -le 100 ] || fail "settlement does not answer on $ADDR:$PORT from $to after the move"
        sleep 0.1
    done
    echo "settlement: moved from $from to $to"
}

case "${1:-}" in
move)
    case "${2:-}" in
    dc1) move dc1-srv dc2-srv ;;
    dc2) move dc2-srv dc1-srv ;;
    *) usage ;;
    esac
    ;;
where)
    where || fail "no server holds $ADDR"
    ;;
*) usage ;;
esac
