#!/bin/sh
# haproxy external-check command for PING health monitors.
# haproxy runs it as: <proxy address> <proxy port> <server address> <server port>;
# the member is up when it answers one ICMP echo request within a second.
# haproxy forbids its children to gain privileges (no_new_privs), so ping cannot use its
# cap_net_raw file capability: the amphora's namespace must allow unprivileged ICMP
# sockets (sysctl net.ipv4.ping_group_range="0 2147483647"), as upstream's image does.
case "$3" in
    *:*) exec /usr/bin/ping -6 -q -n -c 1 -W 1 "$3" >/dev/null 2>&1 ;;
    *) exec /usr/bin/ping -4 -q -n -c 1 -W 1 "$3" >/dev/null 2>&1 ;;
esac
