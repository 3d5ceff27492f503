#!/usr/bin/env bash
# Shell test of the htnn command-line program.
# Usage: test_cli.sh PATH/TO/htnn
# SPDX-License-Identifier: MIT
#
# Trains on a small, deterministic, linearly separable CSV problem, then
# checks info, eval, predict and the failure modes (exit status 1 for
# runtime failures, 2 for usage errors).  Prints "N passed, M failed" and
# exits non-zero if any check failed.

set -u

HTNN=${1:?usage: test_cli.sh PATH/TO/htnn}
case $HTNN in /*) ;; *) HTNN=$PWD/$HTNN ;; esac

TMP=$(mktemp -d "${TMPDIR:-/tmp}/htnn-cli-test.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() {
    failed=$((failed + 1))
    echo "FAILED: $1"
    [ -s out ] && sed 's/^/  stdout: /' out | head -n 20
    [ -s err ] && sed 's/^/  stderr: /' err | head -n 20
}
check() { # check DESCRIPTION COMMAND...: passes when COMMAND succeeds
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# run ARGS...: runs htnn with stdout in ./out, stderr in ./err; sets $rc.
run() {
    "$HTNN" "$@" >out 2>err
    rc=$?
}

# json_field FILE KEY: the value of "KEY": in a one-line JSON object.
json_field() {
    sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" "$1" | head -n 1
}

at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 >= b + 0) }'; }

# ---- data: label = [x1 + x2 - x3 - x4 > 0], features in [-1, 1], rows with
# a margin below 0.1 skipped; fixed formulas, no randomness.
make_csv() { # make_csv FIRST ROWS EXTRA_COLUMNS HEADER
    awk -v first="$1" -v rows="$2" -v extra="$3" -v header="$4" 'BEGIN {
        if (header) {
            printf "label,f1,f2,f3,f4"
            for (e = 0; e < extra; e++) printf ",x%d", e
            printf "\n"
        }
        n = 0
        for (i = first; n < rows; i++) {
            x1 = 2 * ((i * 37) % 101) / 100 - 1
            x2 = 2 * ((i * 53) % 97) / 96 - 1
            x3 = 2 * ((i * 29) % 89) / 88 - 1
            x4 = 2 * ((i * 17) % 83) / 82 - 1
            s = x1 + x2 - x3 - x4
            if (s < 0.1 && s > -0.1) continue
            printf "%d,%.4f,%.4f,%.4f,%.4f", (s > 0), x1, x2, x3, x4
            for (e = 0; e < extra; e++) printf ",%.4f", ((i * (7 + e)) % 13) / 12
            printf "\n"
            n++
        }
    }'
}

make_csv 0 200 0 1 >train.csv
make_csv 1000 100 0 0 >test.csv
make_csv 2000 20 1 0 >wide.csv

# ---- version and help
run --version
check "--version exits 0 and prints a version" \
    test "$rc" -eq 0 -a -n "$(grep -E '^htnn [0-9]+\.[0-9]+\.[0-9]+' out)"
run --help
check "--help exits 0" test "$rc" -eq 0
run train --help
check "train --help exits 0 and lists --layers" \
    test "$rc" -eq 0 -a -n "$(grep -- --layers out)"

# ---- train
run train --train-csv train.csv --test-csv test.csv --layers 8 --epochs 30 \
    --batch 10 --lr 0.01 --seed 3 --json --out m.htnn
check "train exits 0" test "$rc" -eq 0
check "train writes the model file" test -s m.htnn
check "train prints one JSON line on stdout" \
    test "$(wc -l <out)" -eq 1 -a -n "$(grep '^{"command":"train"' out)"
check "train JSON names the model" grep -q '"model":"m.htnn"' out
test_acc=$(json_field out test_accuracy)
check "train test accuracy >= 0.9 (got '$test_acc')" at_least "$test_acc" 0.9
samples=$(json_field out train_samples)
check "train JSON has train_samples 200 (got '$samples')" test "$samples" = 200
sps=$(json_field out samples_per_sec)
check "train JSON has samples_per_sec > 0 (got '$sps')" at_least "$sps" 0.000001

run train --train-csv train.csv --test-csv test.csv --layers 8 --epochs 2 \
    --quiet --out m2.htnn
check "train without --json prints the test accuracy" \
    grep -Eq '^test accuracy: [0-9.]+% \(100 examples\)' out
check "train --quiet prints no progress" test ! -s err

# ---- info
run info m.htnn --json
check "info --json exits 0" test "$rc" -eq 0
check "info lists 2 layers" \
    test "$(grep -o '"index":' out | wc -l)" -eq 2
check "info has input width 4" grep -q '"input_width":4' out
run info m.htnn
check "info (text) exits 0 and shows 4 -> 8 and 8 -> 2" \
    test "$rc" -eq 0 -a -n "$(grep '4 -> 8' out)" -a -n "$(grep '8 -> 2' out)"

# ---- eval
run eval m.htnn --csv test.csv --json
check "eval exits 0" test "$rc" -eq 0
acc=$(json_field out accuracy)
check "eval accuracy >= 0.9 (got '$acc')" at_least "$acc" 0.9
check "eval counts 100 examples" grep -q '"examples":100' out
run eval m.htnn --csv test.csv
check "eval (text) prints the accuracy" grep -Eq '^accuracy: [0-9.]+%' out

# ---- predict
run predict m.htnn --csv test.csv
check "predict exits 0" test "$rc" -eq 0
check "predict prints one line per row" test "$(wc -l <out)" -eq 100
check "predict prints classes 0 or 1" test -z "$(grep -Ev '^[01]$' out)"
awk -F, '{ print $1 }' test.csv | paste -d' ' - out >pairs
agree=$(awk '$1 == $2 { n++ } END { print n + 0 }' pairs)
check "predict agrees with the labels on >= 90 rows (got $agree)" \
    test "$agree" -ge 90
run predict m.htnn --csv test.csv --logits --output logits.txt
check "predict --logits --output writes 100 lines of 2 numbers" \
    test "$rc" -eq 0 -a "$(grep -Ec '^[-0-9.e+]+,[-0-9.e+]+$' logits.txt)" -eq 100
cut -d, -f2- test.csv >nolabel.csv
run predict m.htnn --csv nolabel.csv --label-column none
check "predict reads unlabelled CSV" \
    test "$rc" -eq 0 -a "$(wc -l <out)" -eq 100

# ---- failure modes
run eval missing.htnn --csv test.csv
check "missing model file: exit 1 with a message" \
    test "$rc" -eq 1 -a -n "$(grep '^htnn: ' err)"
run train --train-csv missing.csv --out x.htnn
check "missing data file: exit 1 with a message naming it" \
    test "$rc" -eq 1 -a -n "$(grep 'missing.csv' err)"
run train --train-csv train.csv --frobnicate --out x.htnn
check "unknown option: exit 2" test "$rc" -eq 2 -a -n "$(grep -- --frobnicate err)"
run frobnicate
check "unknown command: exit 2" test "$rc" -eq 2
run train --train-csv train.csv --epochs 3x --out x.htnn
check "bad number: exit 2" test "$rc" -eq 2
run train --train-csv train.csv --epochs -1 --out x.htnn
check "negative count: exit 2" test "$rc" -eq 2
run train --train-csv train.csv --out
check "missing value: exit 2" test "$rc" -eq 2
run train --train-csv train.csv
check "missing --out: exit 2" test "$rc" -eq 2
run eval m.htnn --csv wide.csv
check "width mismatch: exit 1 naming both widths" \
    test "$rc" -eq 1 -a -n "$(grep 'takes 4' err | grep 'has 5')"
run predict m.htnn --csv wide.csv
check "width mismatch in predict: exit 1" test "$rc" -eq 1
head -c 40 m.htnn >trunc.htnn
run info trunc.htnn
check "truncated model: exit 1 with a message" \
    test "$rc" -eq 1 -a -n "$(grep '^htnn: ' err)"
run eval trunc.htnn --csv test.csv
check "truncated model in eval: exit 1" test "$rc" -eq 1
printf 'not a model at all\n' >junk.htnn
run info junk.htnn
check "junk model: exit 1" test "$rc" -eq 1
ls x.htnn >/dev/null 2>&1
check "failed runs leave no model behind" test "$?" -ne 0

# ---- the other heuristics inside FTPROP-MB, and full-batch FTPROP on XOR
run train --train-csv train.csv --test-csv test.csv --layers 8 --epochs 30 \
    --batch 10 --lr 0.01 --seed 3 --heuristic hill --hill-sweeps 2 --json --out mh.htnn
hill_acc=$(json_field out test_accuracy)
check "train --heuristic hill learns (test accuracy '$hill_acc' >= 0.9)" at_least "$hill_acc" 0.9
run train --train-csv train.csv --layers 4 --epochs 2 --heuristic exhaustive --max-width 3 \
    --out me.htnn
check "exhaustive wider than --max-width fails with the width and the limit" \
    test "$rc" -eq 1 -a -n "$(grep 'width 4' err | grep 'limit 3')"
printf 'a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n' > xor.csv
run train --train-csv xor.csv --label-column last --layers 2 --output hard --ftprop --json \
    --out mx.htnn
xor_acc=$(json_field out train_accuracy)
check "train --ftprop solves XOR with 2 hidden sign units (train accuracy '$xor_acc')" \
    at_least "$xor_acc" 1

# ---- --arch: a small conv net on 8x8 IDX images (a vertical bar is class 1,
# a horizontal bar class 0, at every position), shape taken from the file
python3 - <<'PY'
import gzip, struct
def write(name, count, first):
    imgs, labels = bytearray(), bytearray()
    for i in range(first, first + count):
        label, pos, level = i % 2, (i // 2) % 6 + 1, 128 + (i * 37) % 128
        img = bytearray(64)
        for k in range(1, 7):
            img[(k * 8 + pos) if label else (pos * 8 + k)] = level
        imgs += img
        labels.append(label)
    with open(name + "-images", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, count, 8, 8) + imgs)
    with gzip.open(name + "-labels.gz", "wb") as f:
        f.write(struct.pack(">II", 0x801, count) + labels)
write("bars-train", 240, 0)
write("bars-test", 60, 1000)
PY
bars="--train-images bars-train-images --train-labels bars-train-labels.gz
      --test-images bars-test-images --test-labels bars-test-labels.gz"
# shellcheck disable=SC2086
run train $bars --arch conv3x3:4,pool2,bn,sign,flatten,dense:2 --epochs 15 --batch 20 \
    --lr 0.01 --json --out conv.htnn
conv_acc=$(json_field out test_accuracy)
check "train --arch conv net learns the bars (test accuracy '$conv_acc' >= 0.95)" \
    at_least "$conv_acc" 0.95
run info conv.htnn
check "info shows the conv layer with its feature maps" \
    grep -q 'conv3x3:4:s1:p1 1x8x8 -> 4x8x8' out
check "info shows the pool and batch-norm layers" \
    test -n "$(grep 'pool2:s2 4x8x8 -> 4x4x4' out)" -a -n "$(grep 'bn 4x4x4 -> 4x4x4  sign' out)"
run eval conv.htnn --images bars-test-images --labels bars-test-labels.gz --json
eval_acc=$(json_field out accuracy)
check "eval of the saved conv net agrees with train ('$eval_acc' = '$conv_acc')" \
    test "$eval_acc" = "$conv_acc"
# shellcheck disable=SC2086
run train $bars --arch conv3x3:4,pool2,sign,dense:3 --out bad.htnn
check "--arch with the wrong output width is a usage error naming both widths" \
    test "$rc" -eq 2 -a -n "$(grep '3 units but the data needs 2' err)"
# shellcheck disable=SC2086
run train $bars --arch conv3x3:4,sign,sign,dense:2 --out bad.htnn
check "--arch with two activations in a row is a usage error" \
    test "$rc" -eq 2 -a -n "$(grep "activation 'sign'" err)"
# shellcheck disable=SC2086
run train $bars --arch conv9x9:4:p0,dense:2 --out bad.htnn
check "--arch with a kernel larger than the image fails and says so" \
    test "$rc" -eq 1 -a -n "$(grep 'larger than its 8x8 input' err)"
run train --train-csv train.csv --arch bogus:3,dense:2 --out bad.htnn
check "--arch with an unknown item names it" \
    test "$rc" -eq 2 -a -n "$(grep "cannot read 'bogus:3'" err)"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
