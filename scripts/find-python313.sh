#!/usr/bin/env bash
# Prints the path of a Python 3.13 interpreter: pyenv's 3.13.x (newest) first, then python3.13 on PATH.
set -u
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root)
  for v in $(ls -1 "$root/versions" 2>/dev/null | grep -E '^3\.13\.[0-9]+$' | sort -t. -k3 -n -r); do
    if [ -x "$root/versions/$v/bin/python3.13" ]; then echo "$root/versions/$v/bin/python3.13"; exit 0; fi
  done
fi
for c in python3.13 python3; do
  p=$(command -v "$c" 2>/dev/null) || continue
  if "$p" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 13) else 1)' 2>/dev/null; then echo "$p"; exit 0; fi
done
exit 1
