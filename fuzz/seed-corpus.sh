#!/usr/bin/env bash
# Seeds the parse_check corpus with every policy in the repository: the
# examples and the UI test cases (valid policies and every diagnostic).
# Corpus directories are gitignored: never commit them.
#
#   fuzz/seed-corpus.sh            # from anywhere in the repository
#   cd fuzz && cargo +nightly fuzz run parse_check
#
# parse_check_structured needs no seeds: its input is a token list decoded
# from the fuzzer's bytes, not policy text, so it starts from an empty corpus.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
corpus="$root/fuzz/corpus/parse_check"
mkdir -p "$corpus"
count=0
while IFS= read -r -d '' file; do
    # Name each seed after its path, so re-running overwrites, not duplicates.
    name="$(realpath --relative-to="$root" "$file" | tr '/' '_')"
    cp "$file" "$corpus/seed_$name"
    count=$((count + 1))
done < <(find "$root/examples" "$root/tests/ui" "$root/tests/parser" "$root/tests/cli" \
    -name '*.grant' -type f -print0)
echo "seeded $count files into ${corpus#"$root"/}"
