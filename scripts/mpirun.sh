#!/usr/bin/env bash
# mpirun for one machine without a network, also as root (CI, containers):
#   scripts/mpirun.sh -np 2 build/lldl-gpt train ...
# OpenMPI refuses root unless told twice, places at most one rank per core
# unless oversubscription is allowed, and may probe network interfaces; here
# ranks talk through shared memory (btl self,vader; pml ob1), never TCP.
set -euo pipefail
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl=self,vader OMPI_MCA_pml=ob1
export OMPI_MCA_btl_vader_single_copy_mechanism=none  # no CMA/ptrace permission in containers
export OMPI_MCA_plm_rsh_agent=false  # nothing remote: fail rather than try ssh
# Each rank defaults to one OpenMP thread unless the caller chose otherwise
# (N ranks x all cores each would oversubscribe the machine).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
exec "${MPIRUN:-mpirun}" --oversubscribe --bind-to none "$@"
