#!/bin/sh
# fwsync.sh on|off|status|boot: what this edge's firewall shares with the other site's.
#   on      start conntrackd (FTFW over the DCI; learnt states go straight into the kernel)
#           and the second chance (a packet from wan this firewall cannot place is handed to
#           the other site's firewall over fwlink: the policy rule for fw.nft's mark 0x2)
#   off     stop both: from now on this firewall knows only the sessions it saw itself
#   status  "on" with conntrackd's counters, or "off"
#   boot    what `drill lab up` runs: on, unless DRILL_PAYMENT_FW_SYNC=off in its environment
# Run it on both edges: sudo drill lab exec labs/payment-dr dc1-edge -- sh /etc/frr/fw/fwsync.sh off
set -eu
CONF=/etc/frr/conntrackd.conf
CTL=/run/frr/conntrackd.ctl
running() { [ -S "$CTL" ] && conntrackd -C "$CONF" -s >/dev/null 2>&1; }
second_chance() { ip rule show pref 90 | grep -q "fwmark 0x2 lookup 300"; }
case "${1:-status}" in
boot)
    mode=${DRILL_PAYMENT_FW_SYNC:-on}
    case "$mode" in on | off) exec sh "$0" "$mode" ;; esac
    echo "DRILL_PAYMENT_FW_SYNC must be on or off, not '$mode'" >&2
    exit 2
    ;;
on)
    second_chance || ip rule add fwmark 0x2 lookup 300 pref 90
    running && exit 0
    rm -f "$CTL" /run/frr/conntrackd.lock
    conntrackd -C "$CONF" -d
    i=0
    until running; do
        i=$((i + 1))
        [ $i -le 100 ] || { echo "conntrackd did not start" >&2; exit 1; }
        sleep 0.05
    done
    ;;
off)
    while second_chance; do ip rule del pref 90; done
    if running; then conntrackd -C "$CONF" -k; fi
    rm -f "$CTL" /run/frr/conntrackd.lock
    ;;
status)
    if running && second_chance; then
        echo on
        conntrackd -C "$CONF" -s
    elif running || second_chance; then
        echo "partly on: conntrackd $(running && echo on || echo off), second chance $(second_chance && echo on || echo off)"
    else
        echo off
    fi
    ;;
*)
    echo "usage: fwsync.sh on|off|status|boot" >&2
    exit 2
    ;;
esac
