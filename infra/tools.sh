#!/usr/bin/env bash
# Installs, idempotently, the external command-line tools the tests need.
#
#   infra/tools.sh            same as `infra/tools.sh apt`
#   infra/tools.sh apt        kcat, promtool, chromium + chromedriver (the pages' browser tests)
#                             from Debian packages (kcat, prometheus, chromium, chromium-driver)
#   infra/tools.sh go         grpcurl, kustomize, buf via `go install` into .cache/bin (slow)
#   infra/tools.sh all        both
#   infra/tools.sh check      report which tools are present; exit 1 if any is missing
#
# Go tools land in <repo>/.cache/bin; put it on PATH (the Makefile does) or call them there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
BIN="$CACHE/bin"
export PATH="$BIN:$PATH"

log() { printf '[tools] %s\n' "$*" >&2; }
die() { printf '[tools] ERROR: %s\n' "$*" >&2; exit 1; }

# command -> Debian package providing it
APT_TOOLS=(kcat:kcat promtool:prometheus chromium:chromium chromedriver:chromium-driver)

# binary name -> go install target
GO_TOOLS=(
  "grpcurl:github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3"
  "kustomize:sigs.k8s.io/kustomize/kustomize/v5@v5.8.1"
  "buf:github.com/bufbuild/buf/cmd/buf@v1.72.0"
)

install_apt() {
  local missing=() entry cmd pkg
  for entry in "${APT_TOOLS[@]}"; do
    cmd="${entry%%:*}"; pkg="${entry#*:}"
    if command -v "$cmd" >/dev/null 2>&1; then
      log "$cmd: present ($(command -v "$cmd"))"
    else
      missing+=("$pkg")
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    log "missing tools; as root run:"
    log "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install manually: ${missing[*]}"
  log "apt-get update (missing packages: ${missing[*]})"
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  for pkg in "${missing[@]}"; do
    if ! apt-cache show "$pkg" >/dev/null 2>&1; then
      die "Debian package '$pkg' is not available from the configured apt sources"
    fi
  done
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  for entry in "${APT_TOOLS[@]}"; do
    cmd="${entry%%:*}"
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing its package"
    log "$cmd: installed ($(command -v "$cmd"))"
  done
}

install_go() {
  command -v go >/dev/null 2>&1 || die "go not found on PATH"
  mkdir -p "$BIN" "$CACHE/logs"
  local entry name target
  for entry in "${GO_TOOLS[@]}"; do
    name="${entry%%:*}"; target="${entry#*:}"
    if [ -x "$BIN/$name" ]; then
      log "$name: present ($BIN/$name)"
      continue
    fi
    log "$name: go install $target (log: .cache/logs/go-$name.log)"
    if ! GOBIN="$BIN" go install "$target" >"$CACHE/logs/go-$name.log" 2>&1; then
      tail -n 30 "$CACHE/logs/go-$name.log" >&2 || true
      die "go install $target failed"
    fi
    log "$name: installed ($BIN/$name)"
  done
}

check() {
  local rc=0 entry cmd
  for entry in "${APT_TOOLS[@]}" "${GO_TOOLS[@]}"; do
    cmd="${entry%%:*}"
    if command -v "$cmd" >/dev/null 2>&1; then
      printf '%-10s %s\n' "$cmd" "$(command -v "$cmd")"
    else
      printf '%-10s MISSING\n' "$cmd"; rc=1
    fi
  done
  return "$rc"
}

case "${1:-apt}" in
  apt) install_apt ;;
  go) install_go ;;
  all) install_apt; install_go ;;
  check) check ;;
  -h|--help|help) sed -n '2,10p' "$0" ;;
  *) die "unknown subcommand '$1' (use: apt | go | all | check)" ;;
esac
