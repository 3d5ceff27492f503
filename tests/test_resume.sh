#!/usr/bin/env bash
# Resumable training through the htnn tool (issue 7, part 4): a training
# process killed with SIGKILL between two checkpoints, then resumed with
# --resume, saves a model file byte for byte identical to an uninterrupted
# run with the same seed and threads; so does one stopped with SIGINT.
# Also: --resume without a checkpoint starts fresh, a checkpoint of another
# fit or a corrupt one is refused, and a checkpoint is a model file.
# Usage: test_resume.sh PATH/TO/htnn
# SPDX-License-Identifier: MIT

set -u

HTNN=${1:?usage: test_resume.sh PATH/TO/htnn}
case $HTNN in /*) ;; *) HTNN=$PWD/$HTNN ;; esac

TMP=$(mktemp -d "${TMPDIR:-/tmp}/htnn-resume-test.XXXXXX") || exit 1
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() {
    failed=$((failed + 1))
    echo "FAILED: $1"
    for f in out err; do
        [ -s $f ] && sed "s/^/  $f: /" $f | head -n 20
    done
}
check() { # check DESCRIPTION COMMAND...: passes when COMMAND succeeds
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# ---- data: 4000 examples of 64 features in [-1, 1], 3 classes from the
# first 8 features, one label in 7 moved to the next class (so training
# never converges); fixed formulas, no randomness.
awk -v rows=4000 -v w=64 'BEGIN {
    for (i = 0; i < rows; i++) {
        s = 0; line = ""
        for (j = 0; j < w; j++) {
            v = ((i * (31 + 2 * j) + j * 17) % 97) / 48 - 1
            if (j < 8) s += (j % 2 ? -v : v)
            line = line (j ? "," : "") sprintf("%.3f", v)
        }
        c = (s > 0.5) ? 2 : (s > -0.5 ? 1 : 0)
        printf "%d,%s\n", (i % 7 == 3) ? (c + 1) % 3 : c, line  # 1 in 7 flipped
    }
}' >train.csv

EPOCHS=12
BATCH=20
EVERY=25
TOTAL=$((EPOCHS * 4000 / BATCH))
TRAIN=(train --train-csv train.csv --layers 256,256 --epochs $EPOCHS --batch $BATCH
       --seed 3 --threads 1 --optimizer sgd --lr 0.05 --momentum 0.9 --schedule cosine)

run() { # run ARGS...: htnn with stdout in ./out, stderr in ./err; sets $rc
    "$HTNN" "$@" >out 2>err
    rc=$?
}

# Starts a checkpointing run in the background and waits for its first
# checkpoint file; sets $pid.
start_and_wait() { # start_and_wait CHECKPOINT OUT
    rm -f "$1"
    "$HTNN" "${TRAIN[@]}" --checkpoint "$1" --checkpoint-every $EVERY --out "$2" \
        >out 2>err &
    pid=$!
    for _ in $(seq 1 600); do
        [ -e "$1" ] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.01
    done
    return 1
}

# The "N batches trained" of the resume message in ./err.
resumed_batches() {
    sed -n 's/.*(\([0-9]*\) batches trained).*/\1/p' err | head -n 1
}

# ---- the uninterrupted reference
run "${TRAIN[@]}" --quiet --out ref.htnn
check "uninterrupted run" test "$rc" -eq 0 -a -s ref.htnn

# ---- SIGKILL between two checkpoints, then --resume
if start_and_wait kill.ckpt killed.htnn; then
    sleep 0.3
    if kill -9 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null
        pid=
        check "killed run left no model" test ! -e killed.htnn
        run "${TRAIN[@]}" --checkpoint kill.ckpt --checkpoint-every $EVERY --resume \
            --out killed.htnn
        n=$(resumed_batches)
        check "resume after SIGKILL exits 0" test "$rc" -eq 0
        check "it resumed between checkpoints ($n of $TOTAL batches, every $EVERY)" \
            test -n "$n" -a "${n:-0}" -gt 0 -a "${n:-0}" -lt $TOTAL -a \
            $((${n:-1} % EVERY)) -eq 0
        check "SIGKILL + resume gives a bit-identical model" cmp ref.htnn killed.htnn
    else
        fail "the run ended before it could be killed (make it longer)"
    fi
else
    fail "no checkpoint file appeared"
fi

# ---- SIGINT: stops after the current batch, saves, writes a checkpoint.
# Job control (set -m) keeps SIGINT from being ignored by the background job.
set -m
start_and_wait int.ckpt stopped.htnn
started=$?
set +m
if [ $started -eq 0 ]; then
    sleep 0.2
    kill -INT "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    pid=
    check "SIGINT exits 130" test "$rc" -eq 130
    run "${TRAIN[@]}" --checkpoint int.ckpt --resume --out stopped.htnn
    n=$(resumed_batches)
    check "resume after SIGINT at batch $n exits 0" test "$rc" -eq 0 -a -n "$n"
    check "SIGINT + resume gives a bit-identical model" cmp ref.htnn stopped.htnn
else
    fail "no checkpoint file appeared (SIGINT run)"
fi

# ---- --resume without a checkpoint file starts fresh (epoch checkpoints)
run "${TRAIN[@]}" --checkpoint fresh.ckpt --resume --out fresh.htnn
check "--resume with a missing checkpoint starts fresh" \
    grep -q "does not exist: starting from scratch" err
check "... and gives the same model" cmp ref.htnn fresh.htnn
run "${TRAIN[@]}" --checkpoint fresh.ckpt --resume --out again.htnn
check "resuming a finished fit trains nothing" grep -q "its fit had finished" err
check "... and saves the same model" cmp ref.htnn again.htnn

# ---- a checkpoint is a model file
run eval fresh.ckpt --csv train.csv
check "htnn eval reads a checkpoint" test "$rc" -eq 0
run eval ref.htnn --csv train.csv
cp out ref.eval
run eval fresh.ckpt --csv train.csv
check "... as the final model" cmp ref.eval out

# ---- refusals
run "${TRAIN[@]}" --batch 25 --checkpoint fresh.ckpt --resume --out other.htnn
check "another batch size is refused (exit 1)" test "$rc" -eq 1
check "... saying why" grep -q "batch size 20" err
check "... and saves nothing" test ! -e other.htnn
cp fresh.ckpt bad.ckpt
printf '\377' | dd of=bad.ckpt bs=1 seek=200 conv=notrunc 2>/dev/null
run "${TRAIN[@]}" --checkpoint bad.ckpt --resume --out other.htnn
check "a corrupt checkpoint is refused (exit 1)" test "$rc" -eq 1
check "... with the checksum error" grep -q "checksum" err
run "${TRAIN[@]}" --resume --out other.htnn
check "--resume without --checkpoint is a usage error" test "$rc" -eq 2
run "${TRAIN[@]}" --checkpoint x.ckpt --checkpoint-every 0 --out other.htnn
check "--checkpoint-every 0 is a usage error" test "$rc" -eq 2

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
