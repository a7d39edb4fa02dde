#!/usr/bin/env bash
# A real single-node Slurm (munge, MariaDB, slurmdbd, slurmctld, slurmd) for the logbook's tests.
#
#   cluster.sh start  STATE_DIR   start what is not running yet, wait until the node is idle
#   cluster.sh status STATE_DIR   exit 0 when the cluster answers and its node is usable
#   cluster.sh stop   STATE_DIR   stop the daemons this script started from STATE_DIR
#
# Configuration, pid files and logs live under STATE_DIR (etc/, log/); nothing under /etc is
# written. Clients (sbatch, squeue, sacct, submitit) find the cluster through
#   export SLURM_CONF=STATE_DIR/etc/slurm.conf
# which `start` prints as its last line. Needs root and the Debian packages slurm-wlm, slurmdbd,
# munge and mariadb-server (`make system-deps` installs them when run as root).
# Environment: SLURM_TEST_CPUS (CPUs the node declares, default 8), SLURM_TEST_MEMORY (MB, 4000).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ACTION="${1:-}"
STATE="${2:-}"
if [[ -z "$ACTION" || -z "$STATE" ]]; then
  echo "usage: $0 start|stop|status STATE_DIR" >&2
  exit 2
fi
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
ETC="$STATE/etc"
LOG="$STATE/log"
export SLURM_CONF="$ETC/slurm.conf"

CLUSTER=logbook-test
HOST="$(hostname -s)"
CPUS="${SLURM_TEST_CPUS:-8}"
MEMORY="${SLURM_TEST_MEMORY:-4000}"
CTLD_PORT=6817
SLURMD_PORT=6818
DBD_PORT=6819
DB_NAME=logbook_slurm_acct
DB_USER=logbook_slurm
DB_PASS=logbook_slurm_test

say() { echo "cluster.sh: $*" >&2; }
fail() { say "$*"; exit 1; }

pid_alive() {  # pid file -> 0 when its process runs
  [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

wait_for() {  # seconds, description, command...
  local seconds="$1" what="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || fail "$what did not come up within ${seconds}s (logs in $LOG)"
    sleep 0.5
  done
}

node_usable() {
  local state
  state="$(sinfo -h -n "$HOST" -o %t 2>/dev/null | head -1)"
  [[ "$state" == idle* || "$state" == mix* || "$state" == alloc* ]]
}

render() {  # template -> file
  sed -e "s|@CLUSTER@|$CLUSTER|g" -e "s|@HOST@|$HOST|g" -e "s|@STATE@|$STATE|g" \
      -e "s|@CPUS@|$CPUS|g" -e "s|@MEMORY@|$MEMORY|g" -e "s|@CTLD_PORT@|$CTLD_PORT|g" \
      -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" -e "s|@DBD_PORT@|$DBD_PORT|g" -e "s|@DB_NAME@|$DB_NAME|g" \
      -e "s|@DB_USER@|$DB_USER|g" -e "s|@DB_PASS@|$DB_PASS|g" "$1" > "$2"
}

check_prerequisites() {
  [[ "$(id -u)" == 0 ]] || fail "needs root (the daemons run as root here)"
  local tool
  for tool in munged slurmctld slurmd slurmdbd sacctmgr mysqld_safe; do
    command -v "$tool" >/dev/null 2>&1 || [[ -x "/usr/sbin/$tool" ]] || \
      fail "missing $tool: install slurm-wlm slurmdbd munge mariadb-server (make system-deps as root)"
  done
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
  [[ -f /etc/munge/munge.key ]] || /usr/sbin/mungekey --create >/dev/null
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  su -s /bin/sh munge -c /usr/sbin/munged
  touch "$STATE/started-munge"
  wait_for 20 munge sh -c 'munge -n | unmunge'
}

start_mariadb() {  # fresh: 1 when this cluster has no job state yet
  local fresh="$1"
  if ! mysqladmin ping >/dev/null 2>&1; then
    mkdir -p /run/mysqld
    chown mysql:mysql /run/mysqld
    [[ -d /var/lib/mysql/mysql ]] || mysql_install_db --user=mysql >/dev/null
    (setsid mysqld_safe --user=mysql >"$LOG/mysqld_safe.log" 2>&1 < /dev/null &)
    touch "$STATE/started-mariadb"
    wait_for 60 MariaDB mysqladmin ping
  fi
  if [[ "$fresh" == 1 ]]; then
    # A new cluster numbers its jobs from 1 again: drop the accounting of earlier ones, or sacct
    # would answer for an old job that had the same id.
    mysql -u root -e "DROP DATABASE IF EXISTS $DB_NAME"
  fi
  mysql -u root <<SQL
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
}

not_ours() {  # daemon -> fail when one runs that this STATE_DIR did not start (same ports)
  local pids
  pids="$(pgrep -x "$1" || true)"
  if [[ -n "$pids" ]] && ! pid_alive "$STATE/$1.pid"; then
    fail "a $1 started elsewhere already runs (pid $pids); stop it first (cluster.sh stop ITS_STATE_DIR)"
  fi
}

start() {
  if status >/dev/null 2>&1; then
    echo "export SLURM_CONF=$SLURM_CONF"
    return
  fi
  check_prerequisites
  not_ours slurmctld
  not_ours slurmd
  not_ours slurmdbd
  mkdir -p "$ETC" "$LOG" "$STATE/ctld" "$STATE/slurmd"
  render "$HERE/slurm.conf.in" "$ETC/slurm.conf"
  render "$HERE/slurmdbd.conf.in" "$ETC/slurmdbd.conf"
  chmod 600 "$ETC/slurmdbd.conf"
  start_munge
  local fresh=0
  if [[ ! -f "$STATE/ctld/job_state" ]] && ! pid_alive "$STATE/slurmdbd.pid"; then fresh=1; fi
  start_mariadb "$fresh"
  if ! pid_alive "$STATE/slurmdbd.pid"; then
    slurmdbd
    wait_for 30 slurmdbd sacctmgr -n list cluster
  fi
  sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null 2>&1 || true
  sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" || fail "could not register cluster $CLUSTER in slurmdbd"
  if ! pid_alive "$STATE/slurmctld.pid"; then
    slurmctld -f "$SLURM_CONF"
    wait_for 30 slurmctld scontrol ping
  fi
  if ! pid_alive "$STATE/slurmd.pid"; then
    slurmd -f "$SLURM_CONF" -N "$HOST"
  fi
  local deadline=$((SECONDS + 60))
  until node_usable; do
    if sinfo -h -n "$HOST" -o %t 2>/dev/null | grep -qE 'down|drain'; then
      scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    fi
    (( SECONDS < deadline )) || fail "node $HOST did not become idle within 60s: $(sinfo -h -o '%t %E' 2>&1) (logs in $LOG)"
    sleep 0.5
  done
  say "Slurm cluster $CLUSTER up: node $HOST with $CPUS CPUs, state in $STATE"
  echo "export SLURM_CONF=$SLURM_CONF"
}

status() {
  [[ -f "$SLURM_CONF" ]] || { echo "not configured in $STATE"; return 1; }
  pid_alive "$STATE/slurmdbd.pid" || { echo "slurmdbd not running"; return 1; }
  pid_alive "$STATE/slurmctld.pid" || { echo "slurmctld not running"; return 1; }
  pid_alive "$STATE/slurmd.pid" || { echo "slurmd not running"; return 1; }
  scontrol ping >/dev/null 2>&1 || { echo "slurmctld does not answer"; return 1; }
  node_usable || { echo "node $HOST not usable: $(sinfo -h -o '%t' 2>&1)"; return 1; }
  echo "up: $(sinfo -h -o '%P %t %c CPUs')"
}

stop_pidfile() {  # pid file, name
  if pid_alive "$1"; then
    local pid; pid="$(cat "$1")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
    say "$2 (pid $pid) did not stop on SIGTERM; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
  fi
}

stop() {
  stop_pidfile "$STATE/slurmd.pid" slurmd
  stop_pidfile "$STATE/slurmctld.pid" slurmctld
  stop_pidfile "$STATE/slurmdbd.pid" slurmdbd
  if [[ -f "$STATE/started-mariadb" ]]; then
    mysqladmin shutdown >/dev/null 2>&1 || true
    rm -f "$STATE/started-mariadb"
  fi
  if [[ -f "$STATE/started-munge" ]]; then
    [[ -s /run/munge/munged.pid ]] && kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
    rm -f "$STATE/started-munge"
  fi
  say "stopped the cluster in $STATE"
}

case "$ACTION" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status STATE_DIR" >&2; exit 2 ;;
esac
