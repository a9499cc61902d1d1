#!/bin/sh
# dnsctl.sh db ADDRESS [NODE...]: point db.pay.example at ADDRESS in the sites' resolvers
# (dnsmasq reads /run/frr/db.hosts, reloaded on SIGHUP). Default: both dc1-srv and dc2-srv.
# Runs on a node or from the host (the files are under /run/drill/lab/payment-dr/NODE/run).
set -eu
LAB=/run/drill/lab/payment-dr
[ "${1:-}" = db ] || { echo "usage: dnsctl.sh db ADDRESS [NODE...]" >&2; exit 2; }
address=${2:?usage: dnsctl.sh db ADDRESS [NODE...]}
case "$address" in 192.0.2.23 | 192.0.2.33) ;; *) echo "dnsctl.sh: $address is no db instance" >&2; exit 2 ;; esac
shift 2
[ $# -gt 0 ] || set -- dc1-srv dc2-srv
for node in "$@"; do
    run=$LAB/$node/run
    [ -d "$run" ] || { echo "dnsctl.sh: node $node is not running" >&2; exit 1; }
    echo "$address db.pay.example" >"$run/db.hosts.tmp"
    mv "$run/db.hosts.tmp" "$run/db.hosts"
    if [ -f "$run/dns.pid" ]; then kill -HUP "$(cat "$run/dns.pid")"; fi
done
