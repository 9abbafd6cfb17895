#!/usr/bin/env bash
# The OTLP collector tests' system parts (tests/otlp): nginx from Debian, which terminates TLS
# and verifies client certificates in front of the rotel OpenTelemetry collector (rotel itself
# comes from PyPI through ci/requirements-test.txt). Idempotent: apt runs only when missing.
# Nothing is started here; the pytest fixtures start each process on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ATS_VENV:-.venv}

if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo -n"; fi
  export DEBIAN_FRONTEND=noninteractive
  # Only refresh the package lists when the package is unknown to apt.
  apt-cache show nginx-light >/dev/null 2>&1 || $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
  # The Debian package may start a system-wide nginx on port 80; the tests never use it.
  if command -v service >/dev/null 2>&1; then $SUDO service nginx stop >/dev/null 2>&1 || true; fi
fi

# Fail here, clearly, rather than in the fixtures.
ROTEL="$("$VENV/bin/python" -c 'import pathlib, rotel; print(pathlib.Path(rotel.__file__).parent / "rotel-agent")')"
"$ROTEL" --version >/dev/null
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
NGINX_BUILD="$("$NGINX" -V 2>&1)"
case "$NGINX_BUILD" in *--with-http_v2_module*) ;; *) echo "nginx lacks HTTP/2 (needed for gRPC over TLS)" >&2; exit 1 ;; esac
echo "services: $("$ROTEL" --version), $("$NGINX" -v 2>&1)"
