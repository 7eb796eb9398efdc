#!/bin/sh
# Trust the certificates in /tmp/extra-ca/*.crt that the image does not trust already
# (one PEM bundle may hold many): pip and Maven fetch from PyPI and Maven Central, which a
# TLS-inspecting proxy re-signs with its own CA. update-ca-certificates also refreshes
# Java's trust store when Java is installed.
set -eu
mkdir -p /usr/local/share/ca-certificates/extra
for bundle in /tmp/extra-ca/*.crt; do
  [ -f "$bundle" ] || continue
  awk -v out="/usr/local/share/ca-certificates/extra/$(basename "$bundle" .crt)" \
      -v known=/etc/ssl/certs/ca-certificates.crt '
    BEGIN { while ((getline line < known) > 0) trusted[line] = 1 }
    /BEGIN CERTIFICATE/ { pem = ""; fresh = 0 }
    { pem = pem $0 "\n"; if ($0 !~ /CERTIFICATE/ && !($0 in trusted)) fresh = 1 }
    /END CERTIFICATE/ { if (fresh) { n++; file = out "-" n ".crt"; printf "%s", pem > file; close(file) } }
  ' "$bundle"
done
update-ca-certificates > /dev/null
