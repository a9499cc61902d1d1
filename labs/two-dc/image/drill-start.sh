#!/bin/sh
# Container entrypoint: keep management out of the data path, start sshd, then FRR.
set -e

# As on the built-in backend: never forward between eth0 (management) and data ports,
# and never answer for the management subnet from a data port.
mgmt_net=$(ip -o -4 route show dev eth0 scope link | awk '{print $1; exit}')
if [ -n "$mgmt_net" ]; then
  nft -f - <<NFT
table inet drill_mgmt {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "eth0" drop
    oifname "eth0" drop
  }
  chain input {
    type filter hook input priority 0; policy accept;
    iifname != { "eth0", "lo" } ip daddr $mgmt_net drop
  }
}
NFT
fi

/usr/sbin/sshd

if [ -f /etc/frr/daemons ]; then
  exec /usr/lib/frr/docker-start
fi
exec sleep infinity
