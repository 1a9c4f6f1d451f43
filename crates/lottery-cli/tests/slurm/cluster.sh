#!/usr/bin/env bash
# A one-node Slurm cluster on this machine for tests/slurm.rs, with accounting so that `sacct`
# answers: munged, MariaDB, slurmdbd, slurmctld and slurmd, each started here in the
# foreground of a background job so that its pid is known, and stopped by that pid.
#
#   cluster.sh start DIR   installs the Debian packages when missing (root), writes the
#                          configs into DIR, starts the daemons, waits for the node to be idle;
#                          prints `SLURM_CONF=DIR/slurm.conf`
#   cluster.sh stop DIR    stops every daemon DIR/pids lists, newest first
set -euo pipefail
cmd="$1"
dir="$(realpath -m "$2")"

stop() {
  [ -f "$dir/pids" ] || return 0
  # Jobs first, so that no task outlives the daemons that ran it.
  if [ -f "$dir/slurm.conf" ]; then
    SLURM_CONF="$dir/slurm.conf" timeout 10 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 50); do
      [ -z "$(SLURM_CONF="$dir/slurm.conf" timeout 5 squeue -h 2>/dev/null)" ] && break
      sleep 0.2
    done
  fi
  tac "$dir/pids" | while read -r name pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$dir/pids"
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi

mkdir -p "$dir"
if ! command -v slurmctld >/dev/null || ! command -v slurmdbd >/dev/null \
  || ! command -v munged >/dev/null || ! command -v mariadbd >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$dir/apt.log" 2>&1
  apt-get install -y -qq --no-install-recommends slurm-wlm slurmdbd munge mariadb-server \
    >>"$dir/apt.log" 2>&1
fi

started() { echo "$1 $2" >>"$dir/pids"; }
# Ports apart from any real Slurm's, so the test never talks to a cluster it did not start;
# addresses given, so the host's name need not resolve.
ctld_port=16817 slurmd_port=16818 dbd_port=16819 db_port=16820
host="$(hostname -s)"
cpus=2

# munge: the daemon's own key (made by the package) and default socket.
mkdir -p /run/munge /var/log/munge /var/lib/munge
[ -f /etc/munge/munge.key ] || mungekey --create >/dev/null 2>&1 || create-munge-key -f
munged -F --force >"$dir/munged.log" 2>&1 &
started munged $!

# MariaDB on a port of its own, its data in DIR.
mkdir -p "$dir/db"
mariadb-install-db --user=root --datadir="$dir/db" --auth-root-authentication-method=socket \
  >"$dir/db-install.log" 2>&1
mariadbd --user=root --datadir="$dir/db" --socket="$dir/db.sock" --port=$db_port \
  --bind-address=127.0.0.1 --pid-file="$dir/db.pid" --log-error="$dir/db.log" >"$dir/db.out" 2>&1 &
started mariadbd $!
for _ in $(seq 100); do [ -S "$dir/db.sock" ] && break; sleep 0.2; done
mariadb --socket="$dir/db.sock" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'lottery'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"

cat >"$dir/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=$dbd_port
SlurmUser=root
PidFile=$dir/slurmdbd.pid
LogFile=$dir/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=lottery
StorageLoc=slurm_acct_db
CONF
chmod 600 "$dir/slurmdbd.conf"

cat >"$dir/slurm.conf" <<CONF
ClusterName=lotterytest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
SlurmdParameters=config_overrides
JobRequeue=1
KillWait=10
MinJobAge=3600
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$dbd_port
JobAcctGatherType=jobacct_gather/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
mkdir -p "$dir/state" "$dir/spool"
export SLURM_CONF="$dir/slurm.conf"

slurmdbd -D >"$dir/slurmdbd.out" 2>&1 &
started slurmdbd $!
for _ in $(seq 100); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.2; done
sacctmgr -i add cluster lotterytest >/dev/null 2>&1 || true

slurmctld -D -i >"$dir/slurmctld.out" 2>&1 &
started slurmctld $!
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
slurmd -D >"$dir/slurmd.out" 2>&1 &
started slurmd $!
for _ in $(seq 150); do
  sinfo -h -o %t 2>/dev/null | grep -q idle && break
  sleep 0.2
done
if ! sinfo -h -o %t | grep -q idle; then
  echo "the node never became idle: $(sinfo -h 2>&1); logs in $dir" >&2
  stop
  exit 1
fi
echo "SLURM_CONF=$SLURM_CONF"
