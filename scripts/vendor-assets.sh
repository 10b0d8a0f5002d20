#!/usr/bin/env bash
# Fetch the browser assets from the npm registry and copy their built files into api/static/vendor/.
# Users never need Node.js: the copied files are committed. Versions are pinned here, in one place.
set -euo pipefail
BPMN_JS_VERSION="18.31.1"
HTMX_VERSION="2.0.11"
SWAGGER_UI_VERSION="5.36.0"

root="$(cd "$(dirname "$0")/.." && pwd)"
target="$root/api/static/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent "bpmn-js@$BPMN_JS_VERSION" "htmx.org@$HTMX_VERSION" \
  "swagger-ui-dist@$SWAGGER_UI_VERSION"

rm -rf "$target"
mkdir -p "$target/bpmn-js/assets" "$target/htmx" "$target/swagger-ui"
dist="node_modules/bpmn-js/dist"
cp "$dist/bpmn-modeler.production.min.js" "$dist/bpmn-navigated-viewer.production.min.js" "$target/bpmn-js/"
cp -r "$dist/assets/." "$target/bpmn-js/assets/"
cp node_modules/htmx.org/dist/htmx.min.js "$target/htmx/"
# /api/docs works offline and under the page CSP: the bundle and its CSS, initialised by api/static/api-docs.js
cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui.css "$target/swagger-ui/"
cp node_modules/bpmn-js/LICENSE "$target/bpmn-js/LICENSE" 2>/dev/null || true
cp node_modules/htmx.org/LICENSE "$target/htmx/LICENSE" 2>/dev/null || true
cp node_modules/swagger-ui-dist/LICENSE "$target/swagger-ui/LICENSE" 2>/dev/null || true
cat > "$target/VERSIONS" <<VERSIONS
bpmn-js $BPMN_JS_VERSION
htmx.org $HTMX_VERSION
swagger-ui-dist $SWAGGER_UI_VERSION
VERSIONS
echo "vendored bpmn-js $BPMN_JS_VERSION, htmx.org $HTMX_VERSION and swagger-ui-dist $SWAGGER_UI_VERSION into $target"
