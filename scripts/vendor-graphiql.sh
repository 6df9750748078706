#!/usr/bin/env bash
# Refresh the GraphQL explorer's files in local/chatkeep_local/static/graphiql/ (served by `chatkeep dev` at
# GET /graphql, offline: no CDN) from the npm registry: GraphiQL's UMD build and the React it runs on.
# Needs npm. Run from the repository root; commit what changes.
set -euo pipefail
GRAPHIQL=3.9.0   # the last major with a UMD build (4.x and later are ES modules only)
REACT=18.3.1     # GraphiQL 3 supports React 16 to 18; 19 has no UMD build
DEST=local/chatkeep_local/static/graphiql
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null)
for pkg in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
  mkdir -p "$work/$pkg" && tar -xzf "$work/$pkg.tgz" -C "$work/$pkg"
done
mkdir -p "$DEST"
cp "$work/graphiql-$GRAPHIQL/package/graphiql.min.js" "$work/graphiql-$GRAPHIQL/package/graphiql.min.css" "$DEST/"
cp "$work/react-$REACT/package/umd/react.production.min.js" "$DEST/"
cp "$work/react-dom-$REACT/package/umd/react-dom.production.min.js" "$DEST/"
{
  echo "Vendored by scripts/vendor-graphiql.sh: graphiql $GRAPHIQL, react $REACT, react-dom $REACT (npm), MIT licensed."
  for pkg in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
    echo; echo "----- ${pkg%-*} -----"; cat "$work/$pkg/package/LICENSE"
  done
} > "$DEST/LICENSES.txt"
# The source-map comments point at files not vendored: drop them (browsers would ask for them).
sed -i -e '/^\/\/# sourceMappingURL=/d' "$DEST"/*.js
sed -i -e 's#/\*\# sourceMappingURL=[^*]*\*/##' "$DEST"/*.css
ls -l "$DEST"
