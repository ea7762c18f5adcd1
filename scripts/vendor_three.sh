#!/usr/bin/env bash
# Rebuild video3d/viewer/three.min.js: the parts of three.js the viewer uses
# (plus OrbitControls) bundled, tree-shaken and minified into ONE classic script
# that defines the global THREE. Needs node/npm and the npm registry; the result is
# committed, so neither is needed to install or use video3d.
#   bash scripts/vendor_three.sh [THREE_VERSION]
set -euo pipefail
version="${1:-0.187.0}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
dest="$repo/video3d/viewer"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm install --silent --no-audit --no-fund "three@$version" esbuild@0.25 >/dev/null
cat > entry.js <<'JS'
export { Scene, PerspectiveCamera, WebGLRenderer, Color, BufferGeometry, Float32BufferAttribute, LineSegments,
  Line, LineBasicMaterial, GridHelper, Vector3, Quaternion, Group, Mesh, MeshBasicMaterial, CylinderGeometry,
  SphereGeometry, REVISION } from 'three';
export { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
JS
./node_modules/.bin/esbuild entry.js --bundle --minify --format=iife --global-name=THREE \
  --legal-comments=none --log-level=warning --outfile="$dest/three.min.js"
cp node_modules/three/LICENSE "$dest/three.LICENSE"
printf '/* three.js r%s (MIT licence: three.LICENSE), subset + OrbitControls, built by scripts/vendor_three.sh */\n' \
  "$(echo "$version" | cut -d. -f2)" | cat - "$dest/three.min.js" > "$work/out.js" && mv "$work/out.js" "$dest/three.min.js"
echo "wrote $dest/three.min.js ($(wc -c < "$dest/three.min.js") bytes)"
