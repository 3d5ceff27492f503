#!/usr/bin/env bash
# Shell test of `htnn pack` and of `htnn predict` / `htnn info` on packed
# models (issue 5).  Usage: test_cli_pack.sh PATH/TO/htnn
# SPDX-License-Identifier: MIT
set -u
HTNN=${1:?usage: test_cli_pack.sh PATH/TO/htnn}
case $HTNN in /*) ;; *) HTNN=$PWD/$HTNN ;; esac
TMP=$(mktemp -d "${TMPDIR:-/tmp}/htnn-cli-pack.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
passed=0
failed=0
check() {
    local what=$1
    shift
    if "$@"; then passed=$((passed + 1)); echo "ok: $what"
    else failed=$((failed + 1)); echo "FAILED: $what"; fi
}
# a small separable problem; inputs k/16 (exact in float)
awk 'BEGIN { for (i = 0; i < 300; i++) {
    a = (i * 37) % 33 - 16; b = (i * 53) % 31 - 15; c = (i * 29) % 29 - 14
    printf "%d,%.4f,%.4f,%.4f\n", (a + b - c > 0), a / 16, b / 16, c / 16 } }' >d.csv

"$HTNN" train --train-csv d.csv --label-column 0 --layers 32,16 --epochs 20 \
    --binary-weights scaled --out m.htnn --quiet >/dev/null 2>err
check "train --binary-weights scaled" test -s m.htnn
"$HTNN" info m.htnn >info.txt 2>&1
check "info shows binary weights" grep -q "binary weights (scaled)" info.txt
check "info shows the packed size" grep -q "packed size:" info.txt
"$HTNN" pack m.htnn m.htnnb >pack.txt 2>&1
check "pack succeeds" test -s m.htnnb
check "pack reports the ratio" grep -q "smaller" pack.txt
"$HTNN" info m.htnnb >pinfo.txt 2>&1
check "info on a packed model" grep -q "packed model" pinfo.txt
"$HTNN" predict m.htnn --csv d.csv >p1.txt 2>&1
"$HTNN" predict m.htnnb --csv d.csv >p2.txt 2>&1
check "packed predictions equal float predictions" cmp -s p1.txt p2.txt
check "300 predictions" test "$(wc -l <p2.txt)" -eq 300
HTNN_FORCE_PORTABLE=1 "$HTNN" predict m.htnnb --csv d.csv >p3.txt 2>&1
check "portable kernels predict the same" cmp -s p1.txt p3.txt
"$HTNN" predict m.htnnb --csv d.csv --threads 3 --logits >l3.txt 2>&1
"$HTNN" predict m.htnnb --csv d.csv --logits >l4.txt 2>&1
check "packed logits on 3 threads equal 1 thread's" cmp -s l3.txt l4.txt
"$HTNN" predict m.htnn --csv d.csv --logits >l1.txt 2>&1
"$HTNN" predict m.htnnb --csv d.csv --logits >l2.txt 2>&1
check "packed logits equal float logits" cmp -s l1.txt l2.txt
"$HTNN" train --train-csv d.csv --label-column 0 --layers 8 --act relu --epochs 1 \
    --out r.htnn --quiet >/dev/null 2>&1
"$HTNN" pack r.htnn r.htnnb >out 2>err
rc=$?
check "pack refuses relu hidden layers (exit 1)" test $rc -eq 1
check "the refusal names the layer" grep -q "hidden layer 0" err
head -c 100 m.htnnb >t.htnnb
"$HTNN" predict t.htnnb --csv d.csv >out 2>err
rc=$?
check "truncated packed file refused (exit 1)" test $rc -eq 1
"$HTNN" pack m.htnn >out 2>err
rc=$?
check "pack without OUT is a usage error" test $rc -eq 2
"$HTNN" export-c m.htnnb --name small --output m.c >out 2>err
check "export-c writes C source" grep -q "int small_predict(const float \*x, float \*logits)" m.c
"$HTNN" export-c m.htnn --output m2.c >out 2>err
check "export-c packs a float model on the fly" cmp -s m2.c <(sed 's/small_predict/htnn_model_predict/' m.c)
if command -v cc >/dev/null 2>&1; then
    check "the exported C compiles" cc -std=c11 -Wall -Wextra -Werror -c m.c -o m.o
fi
"$HTNN" export-c m.htnnb --name 9bad >out 2>err
rc=$?
check "export-c refuses a bad prefix (exit 1)" test $rc -eq 1
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
