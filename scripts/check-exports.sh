#!/usr/bin/env bash
# Every offline demo app, exported by the CLI (appforge-generate --out) and by the server's zip
# downloads (job zip and app zip), installs and builds with the commands its README prints:
# npm install (with --ignore-scripts), npm run build, and the type check npx tsc --noEmit.
#
# Needs node and npm, and the npm registry (or APPFORGE_NPM_REGISTRY) for the packages.
# Run from anywhere: bash scripts/check-exports.sh
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

registry=()
if [ -n "${APPFORGE_NPM_REGISTRY:-}" ]; then registry=(--registry "$APPFORGE_NPM_REGISTRY"); fi
export npm_config_cache="${npm_config_cache:-$work/npm-cache}"
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

prompts=("a todo list" "a habit tracker with streaks" "a landing page for my SaaS")

# The README's commands, run in the folder: install without scripts, type-check, build.
check_folder() {
  local dir=$1 what=$2
  echo "--- $what"
  for file in package.json README.md; do
    [ -f "$dir/$file" ] || { echo "FAIL: $what has no $file" >&2; exit 1; }
  done
  grep -q '^npm install$' "$dir/README.md" || { echo "FAIL: $what README lacks npm install" >&2; exit 1; }
  (cd "$dir" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error "${registry[@]}")
  # The README's build command (for a TypeScript app: tsc --noEmit && vite build), then the
  # type check on its own, so a project whose build script skips it still fails on a type error.
  grep -q '^npm run build$' "$dir/README.md" || { echo "FAIL: $what README lacks npm run build" >&2; exit 1; }
  (cd "$dir" && npm run build --silent)
  if [ -f "$dir/tsconfig.json" ]; then (cd "$dir" && npx --no-install tsc --noEmit); fi
  [ -f "$dir/dist/index.html" ] || { echo "FAIL: $what built no dist/index.html" >&2; exit 1; }
  echo "ok: $what installs, type-checks and builds"
}

cargo build -q -p appforge-generate -p appforge-server
bin=$(cd "${CARGO_TARGET_DIR:-target}/debug" && pwd)

# 1. The command line.
for i in "${!prompts[@]}"; do
  out="$work/cli-$i"
  env -u ANTHROPIC_API_KEY -u OPENAI_BASE_URL -u DATABASE_URL "$bin/appforge-generate" "${prompts[$i]}" --out "$out" > "$work/cli-$i.log"
  grep -q '^Run it:' "$work/cli-$i.log" || { cat "$work/cli-$i.log"; echo "FAIL: no Run it section" >&2; exit 1; }
  check_folder "$out" "CLI: ${prompts[$i]}"
done

# 2. The server's downloads: a job's zip and the saved app's zip.
port=$((20000 + RANDOM % 20000))
(cd "$work" && env -u ANTHROPIC_API_KEY -u OPENAI_BASE_URL -u APPFORGE_JWT_SECRET \
  DATABASE_URL="sqlite://$work/exports.db" APPFORGE_ADDR="127.0.0.1:$port" \
  "$bin/appforge-server" > "$work/server.log" 2>&1) &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q '^export TOKEN=' "$work/server.log" 2>/dev/null && break
  sleep 0.2
done
token=$(sed -n 's/^export TOKEN=//p' "$work/server.log")
[ -n "$token" ] || { cat "$work/server.log"; echo "FAIL: the server printed no token" >&2; exit 1; }
api="http://127.0.0.1:$port"
auth=(-H "Authorization: Bearer $token")

for i in "${!prompts[@]}"; do
  job=$(curl -sf "${auth[@]}" -H 'Content-Type: application/json' -X POST "$api/api/ai-builder/full-app" \
    -d "{\"prompt\": \"${prompts[$i]}\"}" | sed -E 's/.*"jobId":"([^"]+)".*/\1/')
  curl -sfN "${auth[@]}" "$api/api/jobs/$job/events" > /dev/null
  view=$(curl -sf "${auth[@]}" "$api/api/jobs/$job")
  app=$(printf '%s' "$view" | sed -E 's/.*"appId":"([^"]+)".*/\1/')
  for kind in job app; do
    if [ "$kind" = job ]; then url="$api/api/jobs/$job/zip"; else url="$api/api/apps/$app/zip"; fi
    dir="$work/$kind-zip-$i"
    mkdir -p "$dir"
    curl -sf "${auth[@]}" "$url" -o "$dir.zip"
    (cd "$dir" && unzip -q "$dir.zip")
    check_folder "$dir" "$kind zip: ${prompts[$i]}"
  done
done
echo "every export installs and builds"
