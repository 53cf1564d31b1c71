#!/bin/bash
# The man pages render without warnings and document what the code has:
#  - every page renders with groff -ww on the default device and on utf8
#    (what man(1) uses) without a warning, and holds no control characters;
#  - every subcommand that `r5cfs --help` lists (recursively: `r5cfs journal
#    --help`, ...) has a .SS section "r5cfs SUBCOMMAND ..." in r5cfs(8), and
#    that section names every --option the subcommand's --help prints; the
#    tool's own options appear somewhere in r5cfs(8);
#  - every key the config parser accepts (the k*Keys lists of
#    src/config/config.cc) is an entry of its table's section in r5cfs.toml(5).
# Needs SRCDIR (the source tree) and R5CFS (the built r5cfs binary).
set -euo pipefail
: "${SRCDIR:?SRCDIR must name the source tree}"
: "${R5CFS:?R5CFS must name the built r5cfs binary}"
export LC_ALL=C
status=0
fail() {
  echo "FAIL: $*" >&2
  status=1
}

# ---- Rendering ---------------------------------------------------------------
for page in "$SRCDIR"/man/*.[0-9]; do
  if [[ ! -s $page ]]; then
    fail "$page: empty page"
    continue
  fi
  for device in ps utf8; do
    out=$(groff -man -T"$device" -ww -z "$page" 2>&1) || true
    [[ -z $out ]] || fail "$page: groff -T$device -ww: $out"
  done
  if bad=$(grep -nP '[\x00-\x08\x0b-\x1f\x7f]' "$page"); then
    fail "$page: control characters (an unescaped \\f or \\b in a script?): $(cat -A <<<"$bad" | head -3)"
  fi
done

# ---- r5cfs(8) covers every subcommand and option -----------------------------
page="$SRCDIR/man/r5cfs.8"
# The page with font changes, \- and \& resolved, as the text reads.
plain=$(sed -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' -e 's/\\-/-/g' -e 's/\\&//g' "$page")

# The body of the .SS section(s) whose title starts with "r5cfs WORDS"
# (followed by a space or the end); fails when there is none.
section() {
  awk -v want="r5cfs $*" '
    /^\.S[SH]([ \t]|$)/ {
      title = $0
      sub(/^\.S[SH][ \t]*/, "", title)
      gsub(/"/, "", title)
      inside = ($1 == ".SS" && (title == want || index(title, want " ") == 1))
      if (inside) found = 1
      next
    }
    inside { print }
    END { exit found ? 0 : 1 }' <<<"$plain"
}

# The entries of one block of CLI11's --help ("Options:", "Subcommands:"):
# the first word of each line indented by exactly two spaces.
help_block() {
  awk -v header="$1:" '
    $0 == header { on = 1; next }
    on && !/^  / { exit }
    on && /^  [^ ]/ { print $1 }'
}

help_of() {
  "$R5CFS" "$@" --help 2>&1 || fail "r5cfs $* --help exited with status $?"
}

subcommands_of() { help_of "$@" | help_block Subcommands; }
long_options_of() { help_of "$@" | help_block Options | tr ',' '\n' | grep -E '^--[a-z]' || true; }

mentions() {  # TEXT OPTION: whether OPTION occurs as a whole word
  grep -qE -- "(^|[^-A-Za-z0-9_])$2([^-A-Za-z0-9_]|$)" <<<"$1"
}

check_subcommand() {  # WORDS...: e.g. journal drain
  local text option sub
  if ! text=$(section "$@"); then
    fail "$page: no .SS section for 'r5cfs $*', a subcommand that --help lists"
  else
    for option in $(long_options_of "$@"); do
      [[ $option == --help ]] && continue  # described once, under OPTIONS
      mentions "$text" "$option" ||
        fail "$page: the section of 'r5cfs $*' does not mention $option (from r5cfs $* --help)"
    done
  fi
  for sub in $(subcommands_of "$@"); do
    check_subcommand "$@" "$sub"
  done
}

top=$(subcommands_of)
[[ -n $top ]] || fail "no subcommands found in the output of $R5CFS --help"
for sub in $top; do
  check_subcommand "$sub"
done
for option in $(long_options_of); do
  mentions "$plain" "$option" || fail "$page: does not mention $option (from r5cfs --help)"
done

# ---- r5cfs.toml(5) covers every config key ------------------------------------
config_cc="$SRCDIR/src/config/config.cc"
toml_page="$SRCDIR/man/r5cfs.toml.5"
# The parser's tables: {"array", kArrayKeys}, ...
tables=$(grep -oE '\{"[a-z_]+", *k[A-Za-z]+Keys\}' "$config_cc" |
  sed -E 's/\{"([a-z_]+)", *(k[A-Za-z]+Keys)\}/\1 \2/')
[[ -n $tables ]] || fail "$config_cc: no {\"table\", kXxxKeys} list found"
while read -r table list; do
  [[ -n $table ]] || continue
  keys=$(awk -v list="$list" 'index($0, list "[]") { on = 1 } on { print } on && /;/ { exit }' "$config_cc" |
    grep -oE '"[a-z_]+"' | tr -d '"' || true)
  if [[ -z $keys ]]; then
    fail "$config_cc: no keys found in $list"
    continue
  fi
  text=$(awk -v want="THE [$table] TABLE" '
    /^\.SH/ { title = $0; sub(/^\.SH[ \t]*/, "", title); gsub(/"/, "", title); on = (title == want); next }
    on { print }' "$toml_page")
  if [[ -z $text ]]; then
    fail "$toml_page: no section \"THE [$table] TABLE\""
    continue
  fi
  for key in $keys; do
    grep -qE "^\.BR? $key( |$)" <<<"$text" ||
      fail "$toml_page: key $table.$key (accepted by $config_cc) has no entry in THE [$table] TABLE"
  done
done <<<"$tables"

exit $status
