#!/bin/bash
# Every heap allocation of the library goes through lib/alloc.h, so that the
# fault-injection test (test_faults) can fail it: no direct malloc, calloc,
# realloc, free, strdup or allocating libc call in lib/ outside alloc.c.
# Usage: check-alloc.sh LIB_DIR
set -euo pipefail
dir=$1
pattern='(^|[^_[:alnum:]])(malloc|calloc|realloc|free|strdup|strndup|aligned_alloc|posix_memalign|asprintf|getline|open_memstream)[[:space:]]*\(|realpath[[:space:]]*\([^,]*,[[:space:]]*NULL'
found=$(cd "$dir" && grep -HnE "$pattern" -- *.c | grep -v '^alloc\.c:' | grep -vE ':[0-9]+:[[:space:]]*(/?\*|//)' || true)
if [ -n "$found" ]; then
    echo "allocations that bypass lib/alloc.h (use mem_malloc/mem_calloc/mem_realloc/mem_free):"
    echo "$found"
    echo "0 passed, 1 failed"
    exit 1
fi
echo "every allocation in $dir goes through alloc.h"
