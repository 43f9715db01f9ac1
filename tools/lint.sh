#!/usr/bin/env bash
# Lint of Spline's own C sources (STYLE 22): line length, banned functions with their
# replacements, leftover FIXME/XXX markers. Prints file:line: reason; exits 1 on findings.
# Usage: tools/lint.sh [files...]   (default: every .c/.h under src tests bench tools include)
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -gt 0 ]; then files=("$@"); else
  mapfile -t files < <(git ls-files -- 'src/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]' 'tools/*.[ch]' 'include/*.[ch]')
fi
[ ${#files[@]} -gt 0 ] || { echo "lint: no files"; exit 1; }
awk '
  BEGIN {
    ban["sprintf"] = "snprintf"; ban["vsprintf"] = "vsnprintf"; ban["strcpy"] = "snprintf or memcpy with a length";
    ban["strcat"] = "snprintf"; ban["gets"] = "fgets"; ban["strtok"] = "strtok_r";
    ban["atoi"] = "strtol with error checks"; ban["atol"] = "strtoll with error checks";
    ban["atoll"] = "strtoll with error checks"; ban["rand"] = "base/random.h";
    ban["srand"] = "base/random.h"; ban["asctime"] = "strftime"; ban["ctime"] = "strftime";
    ban["gmtime"] = "gmtime_r"; ban["localtime"] = "localtime_r"; ban["strerror"] = "spl_strerror or strerror_r";
    bad = 0
  }
  FNR == 1 { in_comment = 0 }
  {
    line = $0
    if (length(line) > 100) { printf "%s:%d: line is %d columns (max 100)\n", FILENAME, FNR, length(line); bad = 1 }
    if (line ~ /FIXME/ || line ~ /(^|[^X])XXX([^X]|$)/) { printf "%s:%d: leftover FIXME/XXX marker\n", FILENAME, FNR; bad = 1 }
    code = line
    gsub(/"([^"\\]|\\.)*"/, "\"\"", code)       # drop string literals
    if (in_comment) {                           # inside a block comment
      if (index(code, "*/") == 0) next
      code = substr(code, index(code, "*/") + 2); in_comment = 0
    }
    gsub(/\/\*[^*]*\*+([^\/*][^*]*\*+)*\//, "", code)
    sub(/\/\/.*$/, "", code)                    # and line comments
    if (index(code, "/*") > 0) { code = substr(code, 1, index(code, "/*") - 1); in_comment = 1 }
    for (f in ban) {
      if (match(code, "(^|[^A-Za-z0-9_.>])" f "[ \t]*\\(")) {
        printf "%s:%d: %s() is banned: use %s\n", FILENAME, FNR, f, ban[f]; bad = 1
      }
    }
  }
  END { exit bad }
' "${files[@]}"
rc=$?
[ $rc -eq 0 ] && echo "lint: ${#files[@]} files clean"
exit $rc
