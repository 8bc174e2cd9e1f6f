#!/usr/bin/env bash
# Sizes of the library's headers, for the review of issue 22 ("headers by concept, small
# functions"): the line count of every header in include/deis (public ones first, then
# detail/), and the longest functions, found by a rough heuristic (a line ending in '{' whose
# statement has a parameter list and is not a control statement or a lambda opens a function;
# braces are matched with comments, string and character literals removed). Not run by CI.
#   bash scripts/header_sizes.sh [N]   N: how many of the longest functions to list (default 10)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
top=${1:-10}

echo "== headers (lines)"
find include/deis -name '*.hpp' -not -path '*/detail/*' | sort | xargs wc -l | sed '$d' | sort -rn
echo "== detail headers (lines)"
find include/deis -path '*/detail/*' -name '*.hpp' | sort | xargs wc -l | sed '$d' | sort -rn

echo "== longest functions (lines from the line that opens the body to its closing brace)"
find include/deis -name '*.hpp' | sort | python3 -c '
import re, sys
top = int(sys.argv[1])
control = re.compile(r"^(if|for|while|switch|catch|else|do|return|case)\b")
found = []
for path in sys.stdin.read().split():
    text = open(path, encoding="utf-8").read()
    # drop comments and literals, keeping the line breaks
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"\"(\\.|[^\"\\\n])*\"", "\"\"", text)
    text = re.sub(r"\x27(\\.|[^\x27\\\n])\x27", "0", text)
    stack = []       # per open brace: (name, line) of a function body, or None
    statement = ""   # the text since the last ; { or }
    for lineno, line in enumerate(text.split("\n"), 1):
        stripped = line.rstrip()
        for i, ch in enumerate(stripped):
            if ch == "{":
                s = " ".join(statement.split())
                name = None
                if i == len(stripped) - 1 and "(" in s and ")" in s and not control.match(s) \
                        and not re.search(r"\]\s*(\(|$)", s.split("(")[0] + "(") and "= [" not in s:
                    head = s.split("(")[0].split()
                    name = head[-1] if head else None
                    if name in ("[", "]", "=", None) or name.startswith("["):
                        name = None
                stack.append((name, lineno) if name else None)
                statement = ""
            elif ch == "}":
                if stack:
                    top_entry = stack.pop()
                    if top_entry:
                        found.append((lineno - top_entry[1] + 1, top_entry[0], path, top_entry[1]))
                statement = ""
            elif ch == ";":
                statement = ""
            else:
                statement += ch
        statement += " "
found.sort(key=lambda f: -f[0])
for n, name, path, line in found[:top]:
    print(f"{n:5d}  {name}  ({path}:{line})")
' "$top"
