#!/usr/bin/env bash
# Prints the size of each built artifact (layer and functions) under the sam build directory.
set -eu
dir=${1:-.aws-sam/build}
printf '%-28s %10s %8s\n' artifact size files
for d in "$dir"/*/; do
  [ -d "$d" ] || continue
  name=$(basename "$d")
  printf '%-28s %10s %8s\n' "$name" "$(du -sh "$d" | cut -f1)" "$(find "$d" -type f | wc -l)"
done
