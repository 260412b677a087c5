#!/usr/bin/env bash
# Runs the Swift test suite under a sanitizer:
#
#   Scripts/sanitize.sh address|undefined|thread [swift test --filter pattern]
#
# Each kind builds in its own scratch directory (.build-sanitize-<kind>, git-ignored by .build-*/).
# Without a filter, thread runs only the suites whose code runs work in parallel (Threading.parallelFor
# and its C worker pool: the kernels, fused kernels, skinny GEMM, math ops, rewrites and the
# interpreter; the tokenizer's shared word cache; concurrent downloads) because the whole suite is
# slow under TSan.
# Exits non-zero when a test fails or the sanitizer reports an error.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

kind="${1:-}"
case "$kind" in
    address|undefined|thread) ;;
    *) echo "usage: Scripts/sanitize.sh address|undefined|thread [filter]" >&2; exit 2 ;;
esac
shift
filter=("$@")
if [[ ${#filter[@]} -eq 0 && "$kind" == thread ]]; then
    filter=("GEMM|Conv|Elementwise|Reduce|Softmax|Threading|MathOps|Interpreter|LayerNorm|Unary|FusedKernel|Skinny|Rewrite|TextLength|Padded|Tokenizer|BrokenInputDownload")
fi
filterArguments=()
[[ ${#filter[@]} -gt 0 ]] && filterArguments=(--filter "${filter[0]}")

scratch="$root/.build-sanitize-$kind"
mkdir -p "$scratch"
# Make every report fatal and keep leak checking on (ASan); halt_on_error makes UBSan findings fail.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1"
export LSAN_OPTIONS="suppressions=$scratch/lsan-suppressions.txt:print_suppressions=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
export OPENBLAS_NUM_THREADS=1
# The Swift runtime's backtracer would catch a sanitizer abort and can stall symbolicating; the sanitizer prints its own.
export SWIFT_BACKTRACE=enable=no
log="$scratch/sanitize.log"
# Leaks LeakSanitizer reports outside this project's code (see docs/ROBUSTNESS.md): XCTest's suite objects,
# libcurl's global state (URLSession), Foundation.Process's weak references, and the test HTTP server's
# Data values, a static test payload and the CLI tests' captured output (Swift stores class references with
# spare bits in enums such as Data's representation, which LSan's conservative scan does not recognise).
# The CLI tests' child processes run without leak checking (Tests/CLITests/CLISupport.swift says why).
printf '%s\n' 'leak:libXCTest.so' 'leak:libcurl.so' 'leak:10Foundation7ProcessC3run' \
    'leak:ModelStoreB0V6Server' 'leak:ModelStoreB0V7payload' 'leak:CLITests3CLIO3run' > "$scratch/lsan-suppressions.txt"
echo "== swift test --sanitize=$kind ${filterArguments[*]:-} (log: $log) =="
# swiftc rejects -sanitize=undefined on Linux (Swift code traps on overflow and out-of-bounds by
# itself), so "undefined" means: ASan for everything plus -fsanitize=undefined for the project's C
# targets (ONNXProto's protobuf-c code), whose UBSan handlers the ASan runtime provides.
sanitizeArguments=(--sanitize="$kind")
if [[ "$kind" == undefined ]]; then
    sanitizeArguments=(--sanitize=address -Xcc -fsanitize=undefined -Xcc -fno-sanitize-recover=undefined)
fi
set +e
swift test --scratch-path "$scratch" "${sanitizeArguments[@]}" "${filterArguments[@]}" > "$log" 2>&1
status=$?
set -e
grep -E "Test run with|✘|ERROR: |runtime error:|WARNING: ThreadSanitizer|SUMMARY:" "$log" | head -30 || true
if [[ $status -ne 0 ]] || grep -qE "ERROR: AddressSanitizer|runtime error:|WARNING: ThreadSanitizer|✘" "$log"; then
    echo "sanitize.sh: $kind run failed (status $status); see $log" >&2
    exit 1
fi
echo "sanitize.sh: $kind clean"
