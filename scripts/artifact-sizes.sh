#!/usr/bin/env bash
# Prints the size of each built artifact (layer and functions) under the sam build directory:
# unzipped size (Lambda's limit: 250 MB for a function plus its layers), file count, and the
# size of the zip sam deploy would upload. Exits non-zero if an artifact plus the layers would
# exceed the unzipped limit.
set -eu
dir=${1:-.aws-sam/build}
limit=$((250 * 1024 * 1024))
if [ ! -d "$dir" ]; then echo "error: $dir not found (run sam build first)" >&2; exit 1; fi

zipped() {  # bytes of a deflated zip of directory $1 (what sam deploy uploads)
  python3 - "$1" <<'EOF'
import io, os, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
    for root, _, files in os.walk(sys.argv[1]):
        for f in files:
            p = os.path.join(root, f)
            zf.write(p, os.path.relpath(p, sys.argv[1]))
print(buf.tell())
EOF
}
human() { awk -v b="$1" 'BEGIN { split("B KiB MiB GiB", u); i = 1; while (b >= 1024 && i < 4) { b /= 1024; i++ } printf (i == 1 ? "%d %s" : "%.1f %s"), b, u[i] }'; }

layers_bytes=0
status=0
printf '%-28s %12s %12s %8s\n' artifact unzipped zipped files
for kind in layer function; do
  for d in "$dir"/*/; do
    [ -d "$d" ] || continue
    name=$(basename "$d")
    case "$name" in *Layer*) is_layer=layer ;; *) is_layer=function ;; esac
    [ "$is_layer" = "$kind" ] || continue
    bytes=$(du -sb "$d" | cut -f1)
    files=$(find "$d" -type f | wc -l)
    printf '%-28s %12s %12s %8s\n' "$name" "$(human "$bytes")" "$(human "$(zipped "$d")")" "$files"
    if [ "$kind" = layer ]; then
      layers_bytes=$((layers_bytes + bytes))
    elif [ $((bytes + layers_bytes)) -gt "$limit" ]; then
      echo "error: $name plus its layers exceeds Lambda's 250 MB unzipped limit" >&2
      status=1
    fi
  done
done
exit $status
