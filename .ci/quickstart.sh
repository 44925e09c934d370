#!/usr/bin/env bash
# Follows README.md's quick start word for word in a fresh `npm init -y` project, with the package
# installed from its packed tarball: the shell block's commands, then the TypeScript block as
# index.ts, run with tsx and type-checked with the tsconfig `tsc --init` writes.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

tarball="$(cd "$root" && npm pack --silent --pack-destination "$work" | tail -n 1)"
section="$(awk '/^## Quick start/{on=1;next} /^## /{on=0} on' "$root/README.md")"
commands="$(printf '%s\n' "$section" | awk '/^```sh/{on=1;next} /^```/{if(on)exit} on')"
code="$(printf '%s\n' "$section" | awk '/^```ts/{on=1;next} /^```/{if(on)exit} on')"
[ -n "$commands" ] && [ -n "$code" ] || { echo "quickstart: no sh/ts block under '## Quick start' in README.md" >&2; exit 1; }

cd "$work"
# The README installs `eventfold` from the registry; here the same name comes from the tarball.
commands="${commands//npm install eventfold/npm install --no-audit --no-fund $work/$tarball}"
commands="${commands//npm install -D/npm install --no-audit --no-fund -D}"
# `npx tsx index.ts` needs the file that the README says to write before running it.
first="$(printf '%s\n' "$commands" | grep -v '^#' | grep -v 'npx tsx index.ts')"
last="$(printf '%s\n' "$commands" | grep -v '^#' | grep 'npx tsx index.ts')"
bash -euo pipefail -c "$first"
printf '%s\n' "$code" > my-app/index.ts
output="$(cd my-app && bash -euo pipefail -c "$last")"
printf '%s\n' "$output"
[ "$(printf '%s\n' "$output" | tail -n 1)" = "50 0" ] || { echo "quickstart: expected the program to print '50 0'" >&2; exit 1; }
echo "quickstart: README quick start works in a fresh npm init -y project"
