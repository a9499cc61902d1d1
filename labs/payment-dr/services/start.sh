#!/bin/sh
# start.sh NAME COMMAND...: start one lab service in the background of this node, detached,
# output in /run/frr/NAME.log, pid in /run/frr/NAME.pid (/run/frr is the node's own).
# `drill lab down` ends it with every other process of the node's namespace.
set -eu
name=$1
shift
setsid "$@" </dev/null >>"/run/frr/$name.log" 2>&1 &
echo $! >"/run/frr/$name.pid"
