#!/usr/bin/env bash
# Write .dvc/plots-offline.html: the page template `dvc plots show` fills (.dvc/config's
# plots.html_template), with vega, vega-lite and vega-embed inlined from their npm packages,
# so the interactive plots render offline (DVC's own template loads them from a CDN). The
# versions are the ones DVC's renderer asks for (dvc_render/vega.py). Needs npm.
set -euo pipefail
cd "$(dirname "$0")/.."
VEGA=5.20.2 VEGA_LITE=5.2.0 VEGA_EMBED=6.18.2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "vega@$VEGA" "vega-lite@$VEGA_LITE" "vega-embed@$VEGA_EMBED" >/dev/null)
for pkg in vega vega-lite vega-embed; do
  mkdir -p "$work/$pkg" && tar -xzf "$work/$pkg"-[0-9]*.tgz -C "$work/$pkg"
done
inline() {  # package, version: its minified build as one <script> element, license first
  local pkg=$1 version=$2
  printf '<script>/* %s %s (npm), %s license: https://github.com/vega/%s */\n' \
    "$pkg" "$version" "$(node -p "require('$work/$pkg/package/package.json').license")" "$pkg"
  cat "$work/$pkg/package/build/$pkg.min.js"
  printf '\n</script>\n'
}
out=.dvc/plots-offline.html
{
  cat <<'HEAD'
<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <title>DVC Plot</title>
    <!-- written by scripts/vendor-vega.sh: the plotting scripts are inlined, nothing is
         fetched, so the page renders offline (DVC's CDN script links are left out) -->
HEAD
  inline vega "$VEGA"
  inline vega-lite "$VEGA_LITE"
  inline vega-embed "$VEGA_EMBED"
  cat <<'TAIL'
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
TAIL
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(wc -c < "$out") bytes)"
