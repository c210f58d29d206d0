#!/usr/bin/env bash
# Installs, idempotently, the external command-line tools the tests need.
#
#   infra/tools.sh            same as `infra/tools.sh apt`
#   infra/tools.sh apt        kcat, promtool + the prometheus server, chromium + chromedriver (the
#                             pages' browser tests) from Debian packages (kcat, prometheus,
#                             chromium, chromium-driver)
#   infra/tools.sh go         grpcurl, kustomize, buf via `go install` into .cache/bin (slow)
#   infra/tools.sh crds       CRD schemas of the operators the manifests use, from their Go
#                             modules (go mod download) and, for Strimzi, from its Maven
#                             artifact (mvn dependency:copy), into .cache/crds (tests/deploy)
#   infra/tools.sh all        apt, go and crds
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
APT_TOOLS=(kcat:kcat promtool:prometheus prometheus:prometheus chromium:chromium chromedriver:chromium-driver)

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

# module@version -> CRD files inside the module (the projects' own generated CRDs).
CRD_MODULES=(
  "github.com/kedacore/keda/v2@v2.21.0:config/crd/bases/keda.sh_scaledobjects.yaml config/crd/bases/keda.sh_triggerauthentications.yaml"
  "github.com/prometheus-operator/prometheus-operator@v0.85.0:example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml"
  "github.com/cert-manager/cert-manager@v1.21.2:deploy/crds/cert-manager.io_certificates.yaml deploy/crds/cert-manager.io_issuers.yaml"
  "sigs.k8s.io/gateway-api@v1.6.3:config/crd/standard/gateway.networking.k8s.io_gateways.yaml config/crd/standard/gateway.networking.k8s.io_httproutes.yaml config/crd/standard/gateway.networking.k8s.io_grpcroutes.yaml"
  "github.com/mongodb/mongodb-kubernetes-operator@v0.9.0:config/crd/bases/mongodbcommunity.mongodb.com_mongodbcommunity.yaml"
)

install_crds() {
  command -v go >/dev/null 2>&1 || die "go not found on PATH"
  local dest="$CACHE/crds" entry module files dir file
  mkdir -p "$dest" "$CACHE/logs"
  for entry in "${CRD_MODULES[@]}"; do
    module="${entry%%:*}"; files="${entry#*:}"
    if [ -f "$dest/.${module//\//_}" ]; then
      log "crds of $module: present"
      continue
    fi
    log "crds of $module: go mod download (log: .cache/logs/go-crds.log)"
    dir=$(go mod download -json "$module" 2>>"$CACHE/logs/go-crds.log" \
          | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$dir" ] && [ -d "$dir" ] || die "go mod download $module failed (see .cache/logs/go-crds.log)"
    for file in $files; do
      [ -f "$dir/$file" ] || die "$module has no $file"
      install -m 0644 "$dir/$file" "$dest/"
    done
    : >"$dest/.${module//\//_}"
  done
}

# Strimzi is no Go module. Its API module's published test jar carries the CRDs that
# Strimzi's own crd-generator writes from the API classes at build time, one set per API
# version (crds/v1/*.yaml: the kafka.strimzi.io/v1 schemas deploy/k8s/kafka uses; the
# main jar holds the classes only). Keep the version the operator that runs the cluster.
STRIMZI_API="io.strimzi:api:0.49.0:jar:tests"
STRIMZI_CRDS=(040-Crd-kafka 043-Crd-kafkatopic 044-Crd-kafkauser 045-Crd-kafkanodepool)

install_strimzi_crds() {
  local dest="$CACHE/crds" stamp jar work name
  stamp="$dest/.${STRIMZI_API//:/_}"
  if [ -f "$stamp" ]; then
    log "crds of $STRIMZI_API: present"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found on PATH (Strimzi's CRDs come from Maven)"
  work="$CACHE/maven/strimzi"
  rm -rf "$work" && mkdir -p "$work" "$dest" "$CACHE/logs"
  log "crds of $STRIMZI_API: mvn dependency:copy (log: .cache/logs/mvn-crds.log)"
  if ! mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
       -Dartifact="$STRIMZI_API" -DoutputDirectory="$work" >"$CACHE/logs/mvn-crds.log" 2>&1; then
    tail -n 30 "$CACHE/logs/mvn-crds.log" >&2 || true
    die "mvn dependency:copy $STRIMZI_API failed"
  fi
  jar=$(find "$work" -name '*-tests.jar' | head -n 1)
  [ -n "$jar" ] || die "mvn dependency:copy $STRIMZI_API left no jar in $work"
  for name in "${STRIMZI_CRDS[@]}"; do
    python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
      "$jar" "crds/v1/$name.yaml" >"$dest/strimzi-$name.yaml" 2>>"$CACHE/logs/mvn-crds.log" \
      || die "$STRIMZI_API has no crds/v1/$name.yaml"
  done
  : >"$stamp"
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
  crds) install_crds; install_strimzi_crds ;;
  all) install_apt; install_go; install_crds; install_strimzi_crds ;;
  check) check ;;
  -h|--help|help) sed -n '2,13p' "$0" ;;
  *) die "unknown subcommand '$1' (use: apt | go | crds | all | check)" ;;
esac
