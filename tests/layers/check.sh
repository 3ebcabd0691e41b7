#!/bin/sh
# The structure's rules, read from what the compiler made (README.md,
# "Architecture"):
#   - a file calls only into its own folder and the folders below it
#     (LAYERS, bottom first), and no two files call each other, however
#     far round (no cycle among the files);
#   - no source file is over 900 lines, no function over 60;
#   - no chain of calls from daemon/main down to the bottom is over
#     MAX_CHAIN files (the longest one is printed).  A chain follows
#     calls: a use of another file's function.  A use of its data (the
#     protocol table naming each protocol's ops, a phase's table of
#     functions) is a dependency, counted for the cycles, but no call;
#   - a header includes no header of a layer above its own but a
#     types-only one (NAME-t.h).
# Calls come from the object files: nm's undefined symbols of one object
# matched to the object that defines them.  Known debts are listed in
# known.txt, one a line; one not listed fails, and so does a listed one
# that is no longer true (the list stays exact as debts are paid).
# Usage: check.sh SOURCE_DIR OBJECT...  (the daemon's objects, all of them)
set -eu
src=$1
shift
here=$(dirname "$0")
LAYERS="base cfg proto config runtime server daemon"
MAX_CHAIN=9
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name: the object's path under src/ without .c.o (base/log, proto/echo).
printf '%s\n' "$@" | sort >"$tmp/objs"
[ -s "$tmp/objs" ] || { echo "usage: check.sh SOURCE_DIR OBJECT..."; exit 64; }
while read -r o; do
  n=${o#*/src/}
  n=${n%.c.o}
  nm -P "$o" | awk -v n="$n" '$2 ~ /^[TW]$/ { print "D", n, $1, "f" }
                              $2 ~ /^[DBRGSV]$/ { print "D", n, $1, "d" }
                              $2 == "U" { print "U", n, $1 }'
done <"$tmp/objs" >"$tmp/syms"

awk -v layers="$LAYERS" -v max_chain="$MAX_CHAIN" '
  BEGIN { nl = split(layers, L, " "); for (i = 1; i <= nl; i++) rank[L[i]] = i }
  function layer(f,  d) { d = f; sub(/\/.*/, "", d); return (d in rank) ? rank[d] : 0 }
  # The longest chain of calls from f, in files; its next file in nxt[f]
  # (of two as long, the first by name, so that the line is stable).
  function chain(f,  a, i, n, best) {
    if (f in len) return len[f]
    if (f in busy) return 0		# a cycle: reported as one
    busy[f] = 1; best = 1
    n = split(calls[f], a, " ")
    for (i = 1; i <= n; i++) {
      if (chain(a[i]) + 1 > best || (len[a[i]] + 1 == best && a[i] < nxt[f])) {
        best = len[a[i]] + 1; nxt[f] = a[i] }
    }
    delete busy[f]
    len[f] = best
    return best
  }
  $1 == "D" { def[$3] = $2; fn[$3] = $4 == "f"; node[$2] = 1 }
  $1 == "U" { use[$2, $3] = 1; node[$2] = 1 }
  END {
    for (k in use) {
      split(k, p, SUBSEP)
      if (!(p[2] in def) || def[p[2]] == p[1]) continue
      e[p[1], def[p[2]]] = 1
      if (fn[p[2]] && !((p[1], def[p[2]]) in ce)) {
        ce[p[1], def[p[2]]] = 1; calls[p[1]] = calls[p[1]] " " def[p[2]] }
      if (!((p[1], def[p[2]]) in why) || p[2] < why[p[1], def[p[2]]])
        why[p[1], def[p[2]]] = p[2]
    }
    for (k in e) {
      split(k, p, SUBSEP)
      if (layer(p[2]) > layer(p[1]))
        print "upward call: " p[1] " -> " p[2] " (" why[k] ")"
      r[p[1], p[2]] = 1
    }
    # Warshall: r becomes "reaches"; a file that reaches itself is on a cycle.
    for (k in node) for (i in node) if ((i, k) in r)
      for (j in node) if ((k, j) in r) r[i, j] = 1
    # One line per cycle: the files that reach each other, sorted.
    for (i in node) {
      if (!((i, i) in r)) continue
      n = 0
      for (j in node) if ((i, j) in r && (j, i) in r) m[++n] = j
      for (a = 2; a <= n; a++) for (b = a; b > 1 && m[b] < m[b-1]; b--) {
        t = m[b]; m[b] = m[b-1]; m[b-1] = t }
      s = "cycle:"; for (a = 1; a <= n; a++) s = s " " m[a]
      print s
    }
    if ("daemon/main" in node && chain("daemon/main") > max_chain) {
      s = "chain " len["daemon/main"] " files: daemon/main"
      for (f = "daemon/main"; f in nxt; f = nxt[f]) s = s " -> " nxt[f]
      print s
    }
  }' "$tmp/syms" >"$tmp/found"

# Sizes: a file's lines; a function's lines from its opening brace at the
# start of a line to its closing one (the style puts both there).
for f in $(cd "$src/src" && find . -name '*.c' | sed 's|^\./||' | sort); do
  awk -v f="${f%.c}" '
    /^[A-Za-z_][A-Za-z0-9_ \*]*\(/ { s = $0; sub(/\(.*/, "", s); sub(/.*[ \*]/, "", s); fn = s }
    /^\{/ { start = NR }
    /^\}/ && start { if (NR - start - 1 > 60) print "function over 60 lines: " f ":" fn "()"; start = 0 }
    END { if (NR > 900) print "file over 900 lines: " f }' "$src/src/$f"
done >>"$tmp/found"

# Headers: include/NAME.h belongs to the layer of src/LAYER/NAME.c (none
# or two: to no layer, not checked).  A header includes no header of a
# layer above its own, except a types-only one (NAME-t.h: types make no
# calls, and including them keeps the type graph without cycles).
for h in $(cd "$src/include" && ls *.h); do
  echo "H ${h%.h} $(cd "$src/src" && ls */"${h%.h}.c" 2>/dev/null | tr '\n' ' ')"
  sed -n 's/^#include "\([^"]*\)\.h".*/I '"${h%.h}"' \1/p' "$src/include/$h"
done | awk -v layers="$LAYERS" '
  BEGIN { nl = split(layers, L, " "); for (i = 1; i <= nl; i++) rank[L[i]] = i }
  $1 == "H" && NF == 3 { d = $3; sub(/\/.*/, "", d); if (d in rank) lay[$2] = rank[d] }
  $1 == "I" { inc[$2, $3] = 1 }
  END {
    for (k in inc) {
      split(k, p, SUBSEP)
      if (p[2] ~ /-t$/ || !(p[1] in lay) || !(p[2] in lay)) continue
      if (lay[p[2]] > lay[p[1]])
        print "upward include: " p[1] ".h -> " p[2] ".h"
    }
  }' >>"$tmp/found"

sort -u "$tmp/found" >"$tmp/now"
grep -v '^#' "$here/known.txt" | sed '/^$/d' | sort -u >"$tmp/known"
bad=0
if comm -23 "$tmp/now" "$tmp/known" | grep . >"$tmp/new"; then
  echo "breaks the structure's rules:"; sed 's/^/  /' "$tmp/new"; bad=1
fi
if comm -13 "$tmp/now" "$tmp/known" | grep . >"$tmp/gone"; then
  echo "no longer true, take out of tests/layers/known.txt:"; sed 's/^/  /' "$tmp/gone"; bad=1
fi
[ $bad -eq 0 ] && echo "layers: $(wc -l <"$tmp/objs") objects, $(wc -l <"$tmp/known") known debts, nothing new"
exit $bad
