#!/usr/bin/env bash
# Builds the libFuzzer harnesses in Fuzz/ and runs each for N seconds (default 30).
#
#   Scripts/fuzz.sh [--seconds N] [target...]      targets: FuzzONNXLoad FuzzGIFDecode FuzzNPYRead FuzzTokenizer
#
# The harnesses exist only with ACTION_CLIP_FUZZ=1 (Package.swift) and are built in .build-fuzz (release:
# -O keeps Swift's bounds and overflow checks, and runs ~10-50x more inputs per second than -Onone) with
# -sanitize=fuzzer,address on every Swift target (coverage for the libraries under test, ASan everywhere).
# Each run starts from the committed seeds (Fuzz/seeds/<target>) plus the corpus grown by earlier runs
# (.build-fuzz/corpus/<target>, not committed), with -rss_limit_mb=2048 -timeout=10. A crash, leak,
# timeout or oversized allocation leaves its input in .build-fuzz/artifacts/<target>/ and makes the script
# exit 1. Prints executions per target.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

seconds=30
targets=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds) seconds="${2:?--seconds needs a value}"; shift 2 ;;
        --seconds=*) seconds="${1#--seconds=}"; shift ;;
        -h|--help) sed -n 2,12p "$0"; exit 0 ;;
        -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
all=(FuzzONNXLoad FuzzGIFDecode FuzzNPYRead FuzzTokenizer)
[[ ${#targets[@]} -eq 0 ]] && targets=("${all[@]}")
for target in "${targets[@]}"; do
    [[ " ${all[*]} " == *" $target "* ]] || { echo "fuzz.sh: unknown target $target (known: ${all[*]})" >&2; exit 2; }
done
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --seconds must be a whole number" >&2; exit 2; }

if [[ " ${targets[*]} " == *" FuzzTokenizer "* && ! -f Weights/bpe_simple_vocab_16e6.txt.gz ]]; then
    bash Scripts/fetch-vocab.sh >/dev/null
fi

scratch="$root/.build-fuzz"
export ACTION_CLIP_FUZZ=1
for target in "${targets[@]}"; do
    echo "== build $target =="
    swift build -c release --scratch-path "$scratch" --product "$target" \
        -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address 2>&1 | grep -E "error|warning: unre|Compiling|Build" | tail -3
done
bin="$(swift build -c release --scratch-path "$scratch" --show-bin-path)"

status=0
summary=()
for target in "${targets[@]}"; do
    corpus="$scratch/corpus/$target"
    artifacts="$scratch/artifacts/$target"
    mkdir -p "$corpus" "$artifacts"
    log="$scratch/$target.log"
    echo "== fuzz $target for ${seconds}s =="
    # -print_final_stats gives stat::number_of_executed_units; ASAN_OPTIONS keep leak checks on.
    if ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0" "$bin/$target" "$corpus" "Fuzz/seeds/$target" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" > "$log" 2>&1; then
        result="ok"
    else
        result="FAILED (log: $log; input: $(ls -t "$artifacts" | head -1))"
        status=1
        grep -E "ERROR|SUMMARY|Fatal|panic|error:" "$log" | head -5 || true
    fi
    executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    coverage="$(grep -oE 'cov: [0-9]+' "$log" | tail -1)"
    summary+=("$(printf '%-14s %10s executions  %-10s %s' "$target" "${executions:-?}" "${coverage:-}" "$result")")
done
echo "== summary (${seconds}s each) =="
printf '%s\n' "${summary[@]}"
exit $status
