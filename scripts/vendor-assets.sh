#!/usr/bin/env bash
# Fetch the browser assets from the npm registry and copy their built files into api/static/vendor/.
# Users never need Node.js: the copied files are committed. Versions are pinned here, in one place.
set -euo pipefail
BPMN_JS_VERSION="18.31.1"
HTMX_VERSION="2.0.11"

root="$(cd "$(dirname "$0")/.." && pwd)"
target="$root/api/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent "bpmn-js@$BPMN_JS_VERSION" "htmx.org@$HTMX_VERSION"

rm -rf "$target"
mkdir -p "$target/bpmn-js/assets" "$target/htmx"
dist="node_modules/bpmn-js/dist"
cp "$dist/bpmn-modeler.production.min.js" "$dist/bpmn-navigated-viewer.production.min.js" "$target/bpmn-js/"
cp -r "$dist/assets/." "$target/bpmn-js/assets/"
cp node_modules/htmx.org/dist/htmx.min.js "$target/htmx/"
cp node_modules/bpmn-js/LICENSE "$target/bpmn-js/LICENSE" 2>/dev/null || true
cp node_modules/htmx.org/LICENSE "$target/htmx/LICENSE" 2>/dev/null || true
cat > "$target/VERSIONS" <<VERSIONS
bpmn-js $BPMN_JS_VERSION
htmx.org $HTMX_VERSION
VERSIONS
echo "vendored bpmn-js $BPMN_JS_VERSION and htmx.org $HTMX_VERSION into $target"
