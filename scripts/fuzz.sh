#!/usr/bin/env bash
# Coverage-guided fuzzing of the network-facing parsers (fuzz/, cargo-fuzz + libFuzzer):
#   scripts/fuzz.sh [--seconds N] [TARGET...]   run each TARGET (default: all) N s (default 60)
#   scripts/fuzz.sh --replay                    replay the committed corpora (no fuzzer)
#   scripts/fuzz.sh --minimize [TARGET...]      shrink corpora to a set covering the same edges
#   scripts/fuzz.sh --list                      the targets
# On the stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly-only flags (installed
# with `cargo install cargo-fuzz` if missing). Builds without sanitizer (-s none: the code is safe
# Rust; a panic, a hang over 10 s or more than 2 GiB of memory is the finding) and with debug
# assertions (integer overflow panics). New inputs go to fuzz/work/TARGET (not committed); those
# that add coverage are merged into fuzz/corpus/TARGET at the end, which is committed and replayed
# by `cargo test` (tests/fuzz_corpus.rs). The fuzzer runs in fork mode and goes on after a crash,
# a hang or running out of memory; each is saved under fuzz/artifacts/TARGET/: fix it, copy the
# input into fuzz/corpus/TARGET/ and commit both.
# Each run appends "target seconds execs crashes" to fuzz/work/results.txt. --minimize keeps one
# input per set of edges (hit counts and comparisons ignored, so a few hundred files per target)
# and every file named crash-* (inputs that once crashed stay, whatever they cover).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

seconds=60 replay=0 list=0 minimize=0 targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds=${2:?--seconds needs a number}; shift ;;
    --replay) replay=1 ;;
    --list) list=1 ;;
    --minimize) minimize=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done

all=$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^ucbridge-fuzz$')
if ((list)); then echo "$all"; exit 0; fi
if ((replay)); then exec cargo test --test fuzz_corpus -- --nocapture; fi
((${#targets[@]})) || mapfile -t targets <<<"$all"

export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# The fuzz crate has its own target dir: its instrumented build must not evict the main one.
export CARGO_TARGET_DIR="$ROOT/fuzz/target"
flags=(-O -a -s none)
(cd fuzz && cargo fuzz build "${flags[@]}")
mkdir -p fuzz/work

if ((minimize)); then
  for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$all" || { echo "no target $t (see --list)" >&2; exit 2; }
    min=$(mktemp -d)
    (cd fuzz && cargo fuzz run "${flags[@]}" "$t" "$min" "corpus/$t" -- \
      -set_cover_merge=1 -use_counters=0 -use_cmp=0 -timeout=10) >"fuzz/work/$t.min.log" 2>&1
    find "fuzz/corpus/$t" -type f ! -name 'crash-*' -delete
    cp -n "$min"/* "fuzz/corpus/$t/"
    rm -rf "$min"
    echo "$t: $(find "fuzz/corpus/$t" -type f | wc -l) files" >&2
  done
  exit 0
fi

status=0
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$all" || { echo "no target $t (see --list)" >&2; exit 2; }
  mkdir -p "fuzz/work/$t" "fuzz/artifacts/$t"
  log="fuzz/work/$t.log"
  echo "fuzzing $t for $seconds s (log: $log)" >&2
  start=$(date +%s)
  set +e
  (cd fuzz && cargo fuzz run "${flags[@]}" "$t" "work/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -artifact_prefix="artifacts/$t/") >"$log" 2>&1
  rc=$?
  set -e
  took=$(($(date +%s) - start))
  # Fork mode's status lines: "#EXECS: cov: ... crash: ..."; the last one has the total.
  execs=$(sed -n 's/^#\([0-9]*\): cov:.*/\1/p' "$log" | tail -n 1)
  execs=${execs:-0}
  crashes=$(find "fuzz/artifacts/$t" -type f | wc -l)
  echo "$t $took $execs $crashes rc=$rc" | tee -a fuzz/work/results.txt
  ((rc == 0)) || status=1
  # Keep only inputs that add coverage to the committed corpus.
  (cd fuzz && cargo fuzz run "${flags[@]}" "$t" "corpus/$t" "work/$t" -- -merge=1 -timeout=10) >>"$log" 2>&1 || true
done
exit $status
