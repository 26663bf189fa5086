#!/usr/bin/env bash
# The network lab by hand: `up` builds the engine and worker hosts, `down` removes them.
#
#   sudo scripts/netlab.sh up       # ha-<owner>-eng 10.77.0.1, -w1 .11, -w2 .12 on ha-<owner>-br
#   sudo ip netns exec ha-<owner>-eng heroagent --host 10.77.0.1 --serve ...
#   sudo scripts/netlab.sh status
#   sudo scripts/netlab.sh down
#
# The names follow the test fixture's scheme (tests/netlab/lab.py): `ha-<pid>-<tag>`,
# where <pid> is the owner. The fixture removes a lab whose owner is dead, so `up`
# starts a keeper process to own this one (its pid is kept in $state) and `down`
# stops it. NETLAB_OWNER=<pid> names another owner's lab.
set -euo pipefail

state=${NETLAB_STATE:-/run/heroagent-netlab.owner}
hosts=(eng:1 w1:11 w2:12)

name_lab() {
  owner=$1
  prefix="ha-${owner}-"
  bridge="${prefix}br"
}

if [ -n "${NETLAB_OWNER:-}" ]; then
  name_lab "$NETLAB_OWNER"
elif [ -s "$state" ]; then
  name_lab "$(cat "$state")"
else
  name_lab none
fi

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "netlab needs root (network namespaces, veth pairs, a bridge)" >&2
    exit 1
  fi
}

up() {
  need_root
  if [ "$owner" != none ] && kill -0 "$owner" 2>/dev/null && [ -z "${NETLAB_OWNER:-}" ]; then
    echo "a lab is up already (owner $owner); run \`$0 down\` first" >&2
    exit 1
  fi
  if [ -z "${NETLAB_OWNER:-}" ]; then
    # The keeper only lives, so that the lab's owner pid does; `down` stops it.
    setsid sleep infinity </dev/null >/dev/null 2>&1 &
    name_lab $!
    echo "$owner" >"$state"
  fi
  # A half-built lab is removed again, whatever step failed.
  trap 'down >/dev/null 2>&1 || true' ERR
  ip link add "$bridge" type bridge
  ip link set "$bridge" up
  for pair in "${hosts[@]}"; do
    tag=${pair%%:*}
    ns="${prefix}${tag}"
    ip netns add "$ns"
    ip link add "$ns" type veth peer name eth0 netns "$ns"
    ip link set "$ns" master "$bridge"
    ip link set "$ns" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "10.77.0.${pair#*:}/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
  trap - ERR
  status
}

down() {
  need_root
  for ns in $(ip netns list | awk '{print $1}' | grep "^${prefix}" || true); do
    # Whatever still runs in a lab host is the lab's: stop it before the host goes.
    pids=$(ip netns pids "$ns" || true)
    if [ -n "$pids" ]; then
      kill $pids 2>/dev/null || true
      sleep 1
      kill -9 $(ip netns pids "$ns" || true) 2>/dev/null || true
    fi
    ip link delete "$ns" 2>/dev/null || true
    ip netns delete "$ns"
  done
  ip link delete "$bridge" 2>/dev/null || true
  if [ -z "${NETLAB_OWNER:-}" ] && [ "$owner" != none ]; then
    # Only our keeper: the pid in the state file runs `sleep infinity`, nothing else.
    if grep -q '^sleep' "/proc/$owner/cmdline" 2>/dev/null; then
      kill "$owner" 2>/dev/null || true
    fi
    rm -f "$state"
  fi
}

status() {
  echo "owner ${owner}; bridge ${bridge}:"
  ip -br link show "$bridge" 2>/dev/null || echo "  (no bridge)"
  for ns in $(ip netns list | awk '{print $1}' | grep "^${prefix}" || true); do
    printf '%s: %s\n' "$ns" "$(ip -n "$ns" -br addr show eth0 2>/dev/null | awk '{print $2, $3}')"
    ip -br link show "$ns" 2>/dev/null | sed 's/^/  bridge side: /'
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *)
    echo "usage: $0 up|down|status   (NETLAB_OWNER=<pid> to name another owner)" >&2
    exit 2
    ;;
esac
