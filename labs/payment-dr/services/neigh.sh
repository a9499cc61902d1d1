#!/bin/sh
# neigh.sh: on an edge, permanent ARP entries for every address of the server VLAN, on the
# gateway macvlan (vrrp4-1, the master's route) and on eth3 (table 100: what the other edge
# sends over the DCI). A VRRP backup normally keeps its ARP table warm through its own
# address on the segment; here it has none there (its /32 on eth3 keeps the firewall path
# symmetric), so a new master would resolve the servers at the moment it takes over (seen:
# the first takeover after `lab up` then forwarded nothing for ~0.7 s). The servers' MACs are
# fixed by their exec lines; the web address has its VRRP MAC.
set -eu
add() {
    for dev in vrrp4-1 eth3; do ip neigh replace "$1" lladdr "$2" dev "$dev" nud permanent; done
}
add 192.0.2.10 00:00:5e:00:01:0a
for a in 11 21 22 23 24 25 26 27; do add "192.0.2.$a" 02:00:c0:00:02:0b; done
for a in 12 31 32 33 34 35 36; do add "192.0.2.$a" 02:00:c0:00:02:0c; done
