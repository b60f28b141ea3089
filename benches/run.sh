#!/usr/bin/env bash
# Runs the benches and the callgrind instruction counts, and rewrites the
# generated tables of docs/performance.md (between `<!-- run.sh:NAME -->`
# and `<!-- /run.sh:NAME -->` markers), stamped with the commit measured.
#
#   benches/run.sh            full run (about 15 minutes on 2 cores)
#   benches/run.sh --quick    the target figures only, short criterion runs (a few minutes)
#   benches/run.sh --compare  also the Cedar/regorus comparison (benches/compare: +10 minutes,
#                             after a first build of 15-20 minutes); its output is saved to
#                             target/bench-run/compare.txt, not put into the tables
#
# Needs valgrind and python3. Instruction counts are repeatable; times on a
# shared machine are not (docs/performance.md, "Noise"): read the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
compare=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        --compare) compare=1 ;;
        *) echo "usage: benches/run.sh [--quick] [--compare]" >&2; exit 2 ;;
    esac
done

out=target/bench-run
rm -rf "$out" target/criterion
mkdir -p "$out"
commit=$(git rev-parse --short HEAD)
if ! git diff --quiet HEAD -- crates benches; then commit="$commit+changes"; fi
echo "$commit" >"$out/commit"
date -u +%Y-%m-%d >"$out/date"

cargo build --release -q -p grant-benches --example decide_loop --example load_loop
ex=target/release/examples

# Instructions inside a function of the example, divided by `per`.
count() {
    local per=$1 fn=$2; shift 2
    valgrind --tool=callgrind --callgrind-out-file=/dev/null --collect-atstart=no \
        --toggle-collect="*$fn*" "$@" 2>&1 >/dev/null |
        awk -v per="$per" '/Collected/ { printf "%.0f\n", $4 / per }'
}

n=20000
{
    echo "decide_1 $(count $n decide_many $ex/decide_loop 1 $n exact hit)"
    echo "miss_1 $(count $n decide_many $ex/decide_loop 1 $n exact miss)"
    echo "any_1 $(count $n decide_many $ex/decide_loop 1 $n any)"
    echo "any_6 $(count $n decide_many $ex/decide_loop 6 $n any)"
    echo "mixed_100000 $(count $n decide_many $ex/decide_loop 100000 $n mixed hit)"
    for stage in parse check compile engine; do
        echo "load_$stage $(count 10000 measured $ex/load_loop $stage 10000)"
    done
} | tee "$out/instructions.txt"

# Wall time of one 100,000-rule load (the machine's noise applies).
$ex/load_loop engine 100000 | awk '{ print "load_100000_s", $(NF-1) }' | tee -a "$out/instructions.txt"

short=(--warm-up-time 1 --measurement-time 3)
if [ "$quick" = 1 ]; then
    cargo bench -q -p grant-benches --bench decide -- "${short[@]}" \
        'decide_(simple_exact|simple_mixed|any)/(hit|miss|baseline_hashmap)/(1|6|100000)$' | tee "$out/decide.txt"
    cargo bench -q -p grant-benches --bench compile -- "${short[@]}" \
        'compile_10k_rules/(baseline_lex|parse_check|compile_only|engine)' | tee "$out/compile.txt"
    cargo bench -q -p grant-benches --bench front_end -- "${short[@]}" \
        'front_end_10k_rules/parse$' | tee "$out/front_end.txt"
else
    cargo bench -q -p grant-benches --bench decide -- "${short[@]}" | tee "$out/decide.txt"
    cargo bench -q -p grant-benches --bench compile | tee "$out/compile.txt"
    cargo bench -q -p grant-benches --bench front_end | tee "$out/front_end.txt"
    cargo bench -q -p grant-benches --bench memory | tee "$out/memory.txt"
fi
if [ "$compare" = 1 ]; then
    cargo bench --manifest-path benches/compare/Cargo.toml | tee "$out/compare.txt"
fi

python3 benches/tables.py "$out" docs/performance.md
echo "docs/performance.md: tables regenerated at $commit"
