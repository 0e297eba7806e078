#!/usr/bin/env bash
# Installs the real components the tests run against (Prometheus, kubectl for
# kustomize, openssl for test certificates) when they are missing and this machine can install them.
# With --optional (`make run`), a machine that cannot install them carries on:
# local mode reads the runtimes' metrics directly without Prometheus.
set -euo pipefail
optional=false
[ "${1:-}" = "--optional" ] && optional=true
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v kubectl >/dev/null 2>&1 || missing+=(kubectl)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)  # self-signed certs for the TLS tests
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  if $optional; then
    echo "system-deps: ${missing[*]} not installed; carrying on without" >&2
    exit 0
  fi
  echo "system-deps: please install: ${missing[*]} (the tests run them for real)" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
