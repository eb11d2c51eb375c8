#!/bin/sh
# Instructions per routed chat message (issue 7 item 3): runs the hotpath
# program (tests/bench/hotpath/hotpath.cc) under callgrind, collecting only
# inside hearth_hotpath_message (parse -> route -> serialise of one message,
# plus the turn end that commits mam's archive rows), once with the default
# module set and once with mam switched off, and prints Ir / message and
# the top functions by inclusive Ir. Instruction counts do not depend on the
# machine's load, so a regression shows as a changed number.
#
#   tests/bench/hotpath.sh [BUILD_DIR]      (default: build)
#   ITERATIONS=2000 BATCH=1 TOP=10 tests/bench/hotpath.sh build-hot
#
# A third run counts instructions per presence recipient: ROUNDS broadcasts
# of one available presence to CONTACTS subscribed contacts' sessions
# (collecting hearth_hotpath_presence; Ir / (ROUNDS * CONTACTS)).
#
# BATCH: messages per loop turn (1: every message commits its own LMDB
# transaction, as on a quiet server; larger: one commit per BATCH messages,
# as under load).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:-build}
ITERATIONS=${ITERATIONS:-2000}
BATCH=${BATCH:-1}
TOP=${TOP:-10}
ROUNDS=${ROUNDS:-20}
CONTACTS=${CONTACTS:-200}
BIN=${HOTPATH_BIN:-$BUILD/hotpath}

if [ ! -x "$BIN" ]; then
  echo "hotpath.sh: $BIN not found; build it with" >&2
  echo "  cmake -S . -B $BUILD -DHEARTH_BENCH=ON && cmake --build $BUILD --target hotpath" >&2
  exit 1
fi
if ! command -v valgrind >/dev/null 2>&1 || ! command -v callgrind_annotate >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y valgrind >/dev/null
  else
    echo "hotpath.sh: valgrind is missing: sudo apt-get install -y valgrind" >&2
    exit 1
  fi
fi

OUT=$(mktemp -d "${TMPDIR:-/tmp}/hearth-callgrind-XXXXXX")
trap 'rm -rf "$OUT"' EXIT INT TERM

# run LABEL ARGS...: one callgrind run; prints the per-message figure and
# the top functions. FN (the collected function), UNITS (what the total is
# divided by), UNIT (its name) and HEADER default to the message case.
run() {
  label=$1
  shift
  fn=${FN:-hearth_hotpath_message}
  units=${UNITS:-$ITERATIONS}
  unit=${UNIT:-routed message}
  header=${HEADER:-$ITERATIONS messages, $BATCH per turn}
  file="$OUT/callgrind.$label"
  if ! valgrind --tool=callgrind --callgrind-out-file="$file" --collect-atstart=no \
    --toggle-collect="$fn" \
    "$BIN" "$@" >"$OUT/$label.log" 2>&1; then
    cat "$OUT/$label.log" >&2
    echo "hotpath.sh: the $label run failed" >&2
    exit 1
  fi
  total=$(sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$file" | head -n 1)
  if [ -z "$total" ]; then
    echo "hotpath.sh: no totals in $file" >&2
    exit 1
  fi
  echo "== $label: $header"
  echo "instructions per $unit: $((total / units))"
  for mode in yes no; do
    callgrind_annotate --inclusive=$mode --auto=no --threshold=100 "$file" 2>/dev/null |
      /usr/bin/python3 "$HERE/hotpath/top_functions.py" "$mode" "$units" "$TOP" "$total"
  done
  echo
}

run mam --iterations "$ITERATIONS" --batch "$BATCH"
run no-mam --iterations "$ITERATIONS" --batch "$BATCH" --no-mam
FN=hearth_hotpath_presence UNITS=$((ROUNDS * CONTACTS)) UNIT="presence recipient" \
  HEADER="$ROUNDS broadcasts to $CONTACTS contacts" \
  run presence --iterations "$ROUNDS" --warmup 2 --presence "$CONTACTS"
