#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, to try srbio's SLURM profile without a cluster
# (and for the tests). Debian/Ubuntu, as root (it installs slurm-wlm and munge with apt-get,
# writes /etc/slurm/slurm.conf and starts munged, slurmctld and slurmd directly, no systemd).
#
#   bash scripts/slurm-local.sh start    # install if needed, configure, start; waits until idle
#   bash scripts/slurm-local.sh status   # sinfo
#   bash scripts/slurm-local.sh stop     # stop the daemons (the configuration stays)
#
# No accounting daemon (slurmdbd): jobs are followed with squeue, so finished jobs are kept in
# squeue's view for an hour (MinJobAge=3600) and the Snakemake executor is given
# --slurm-status-command squeue (profiles/slurm-local does). The node offers the machine's CPUs
# and memory (minus 1 GB); it has no GPU.
set -euo pipefail
STATE="${SRBIO_SLURM_STATE:-/var/lib/srbio-slurm}"
CONF=/etc/slurm/slurm.conf
MARK="# written by srbio scripts/slurm-local.sh"

need_root() {
  [ "$(id -u)" = 0 ] || { echo "slurm-local.sh: run as root (it installs and starts daemons)" >&2; exit 1; }
}

install() {
  if ! command -v slurmctld > /dev/null || ! command -v munged > /dev/null; then
    echo "installing slurm-wlm and munge (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge > /dev/null
  fi
}

configure() {
  if [ -f "$CONF" ] && ! grep -q "^$MARK" "$CONF"; then
    echo "slurm-local.sh: $CONF exists and was not written by this script; not touching it" >&2
    exit 1
  fi
  local host cpus mem
  host="$(hostname -s)"
  cpus="$(nproc)"
  mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
  mkdir -p /etc/slurm "$STATE/ctld" "$STATE/d" "$STATE/log"
  cat > "$CONF" <<EOF
$MARK
ClusterName=srbio-local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=3600
MpiDefault=none
SchedulerType=sched/backfill
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  fi
  chown -R munge: /etc/munge 2> /dev/null || true
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown -R munge: /run/munge /var/log/munge /var/lib/munge 2> /dev/null || true
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2> /dev/null; }

start() {
  need_root
  install
  configure
  if ! pgrep -x munged > /dev/null; then
    if id munge > /dev/null 2>&1; then su -s /bin/sh munge -c munged || munged --force; else munged --force; fi
  fi
  running "$STATE/slurmctld.pid" || slurmctld
  running "$STATE/slurmd.pid" || slurmd
  for _ in $(seq 1 60); do
    if sinfo -h -o %T 2> /dev/null | grep -qE "^(idle|mixed|allocated)"; then
      sinfo
      return 0
    fi
    scontrol update nodename="$(hostname -s)" state=resume > /dev/null 2>&1 || true
    sleep 1
  done
  echo "slurm-local.sh: the node did not become idle; see $STATE/log/" >&2
  sinfo >&2 || true
  exit 1
}

stop() {
  for pid in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
    if running "$pid"; then kill "$(cat "$pid")"; fi
  done
  echo "stopped slurmd and slurmctld (munged keeps running; configuration in $CONF)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
