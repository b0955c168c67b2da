#!/usr/bin/env bash
# Build the Open MPI reference benchmark (bench/mpi/mpibench.c) into bench/build/mpibench.
# Installs Open MPI from Debian's packages when it is missing and we are root; otherwise
# prints the command to run and exits 3. Prints the binary's path on success.
#   bash bench/mpi/build.sh [--quiet]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/bench/build/mpibench"
packages=(openmpi-bin libopenmpi-dev)
log() { if [[ "${1:-}" != "" && "${QUIET:-0}" != 1 ]]; then echo "mpi/build.sh: $1" >&2; fi; }
[[ "${1:-}" == "--quiet" ]] && QUIET=1

if ! command -v mpicc >/dev/null || ! command -v mpirun >/dev/null; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "Open MPI is not installed: apt-get install ${packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${packages[@]}" >&2
  else
    echo "mpi/build.sh: Open MPI is not installed. Install it with:" >&2
    echo "  sudo apt-get install -y ${packages[*]}" >&2
    exit 3
  fi
fi

if [[ ! -x "$out" || "$here/mpibench.c" -nt "$out" ]]; then
  mkdir -p "$(dirname "$out")"
  log "mpicc -O2 -o $out $here/mpibench.c -lm"
  mpicc -O2 -Wall -Wextra -o "$out" "$here/mpibench.c" -lm
fi
echo "$out"
