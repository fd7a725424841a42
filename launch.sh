#!/usr/bin/env bash
# Starts jaxpose training on one host with all its GPUs, or on several hosts.
#
#   ./launch.sh single  <config> <workdir> [flags...]
#       One process drives every local GPU (jax.jit over a `data` mesh).
#   ./launch.sh slurm   <config> <workdir> [flags...]
#       Inside an sbatch allocation: one process per node via `srun`; JAX reads
#       the SLURM environment to find the coordinator and its process index.
#   ./launch.sh host    <config> <workdir> <coordinator host:port> <num_hosts> <host_index> [flags...]
#       Plain multi-host: run the same command on every host with its own index;
#       host 0's address is the coordinator.
#
# Extra flags go to `python -m jaxpose.main`, e.g. --config.batch_size=48.
# The global batch (config.batch_size) is split evenly over all GPUs of all hosts.
set -euo pipefail

usage() { sed -n '2,16p' "$0"; exit 2; }
[[ $# -ge 3 ]] || usage
mode=$1 config=$2 workdir=$3
shift 3
cd "$(dirname "$0")"   # configs import each other as `configs.*`
PYTHON=${PYTHON:-python}

case "$mode" in
  single)
    exec "$PYTHON" -m jaxpose.main --config "$config" --workdir "$workdir" "$@" ;;
  slurm)
    # One task per node, each seeing all of its node's GPUs.
    exec srun --ntasks-per-node=1 "$PYTHON" -m jaxpose.main --config "$config" --workdir "$workdir" \
      --multihost "$@" ;;
  host)
    [[ $# -ge 3 ]] || usage
    coordinator=$1 num_hosts=$2 host_index=$3
    shift 3
    exec "$PYTHON" -m jaxpose.main --config "$config" --workdir "$workdir" --multihost \
      --coordinator_address "$coordinator" --num_processes "$num_hosts" --process_id "$host_index" "$@" ;;
  *) usage ;;
esac
