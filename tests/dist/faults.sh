#!/usr/bin/env bash
# Faults in a 2-rank `lldl-gpt train` (ctest dist_faults_np2):
#  1. rank 1 hangs at step 12: rank 0's watchdog ends the job within
#     LLDL_DIST_TIMEOUT (3 s here) plus start-up, naming rank 1;
#  2. rank 1 exits at step 12: mpirun ends the job, naming rank 1;
#  3. after either, the last checkpoint (step 10, written by rank 0 alone,
#     atomically) loads: it samples, and resumes on one rank to the end;
#  4. ranks started with different model configurations stop at start-up
#     with an error naming the differing rank.
# Usage: faults.sh LLDL_GPT WORKDIR
set -uo pipefail
BIN=$1
WORK=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MPI="$HERE/../../scripts/mpirun.sh"
rm -rf "$WORK" && mkdir -p "$WORK" && cd "$WORK" || exit 1
printf 'the quick brown fox jumps over the lazy dog %s\n%%\n' $(seq 1 300) >corpus
ARGS=(--data corpus --steps 30 --batch 2 --block 16 --n-layer 1 --n-head 2 --n-embd 16
      --eval-every 0 --ckpt-every 5)
fail() { echo "FAIL: $*"; echo "--- stderr:"; cat err 2>/dev/null; exit 1; }
export LLDL_DIST_TIMEOUT=3

for mode in hang exit; do
  rm -f ckpt.st*
  start=$SECONDS
  LLDL_DIST_FAULT=1:12:$mode timeout 60 "$MPI" -np 2 "$BIN" train "${ARGS[@]}" --out ckpt.st >out 2>err
  rc=$?
  took=$((SECONDS - start))
  echo "$mode: exit $rc after ${took}s"
  [ "$rc" -ne 0 ] || fail "$mode: the job exited 0"
  [ "$rc" -ne 124 ] || fail "$mode: the job was still running after 60 s (no watchdog)"
  [ "$took" -lt 30 ] || fail "$mode: took ${took}s, more than timeout + 27 s"
  if [ "$mode" = hang ]; then
    grep -q "rank 0: no progress from rank(s) 1 for" err || fail "hang: no watchdog message naming rank 1"
  else
    grep -q "rank 1: fault injection" err || fail "exit: no message from rank 1"
    grep -Eq "rank 1|\[\[[0-9]+,1\],1\]" <(grep -v "fault injection" err) || fail "exit: mpirun did not name rank 1"
  fi
  ls ckpt.st.tmp* >/dev/null 2>&1 && fail "$mode: a temporary checkpoint file was left"
  "$BIN" sample --ckpt ckpt.st --prompt "the " --tokens 8 >sample 2>err || fail "$mode: the checkpoint does not load"
  grep -q '"train.step":"10"' <(head -c 4096 ckpt.st | tr -d ' ') || fail "$mode: the checkpoint is not step 10's"
done

# The checkpoint of two ranks at batch 2 resumes on one rank at batch 4.
"$BIN" train --data corpus --resume ckpt.st --out ckpt.st --batch 4 --stop-at 12 >out 2>err ||
  fail "resume on one rank"
grep -q '"train.step":"12"' <(head -c 4096 ckpt.st | tr -d ' ') || fail "resume did not reach step 12"
# ... and refuses one whose global batch differs, saying so.
"$BIN" train --data corpus --resume ckpt.st --out x.st --batch 3 >out 2>err && fail "resume at another global batch"
grep -q "global batch" err || fail "resume at another global batch: no message about it"

# Different model configurations on the two ranks.
timeout 60 "$MPI" -np 1 "$BIN" train "${ARGS[@]}" --out cfg.st : -np 1 "$BIN" train "${ARGS[@]}" \
  --n-embd 32 --out cfg.st >out 2>err
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "mismatched configs: exit $rc"
grep -q "differs across ranks: rank 0 has [0-9a-f]*, rank 1 has" err || fail "mismatched configs: no message"
echo "faults: all passed"
