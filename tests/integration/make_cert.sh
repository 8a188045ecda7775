#!/usr/bin/env bash
# make_cert.sh DIR NAME SAN: a test certificate authority (DIR/ca.pem and
# DIR/ca.key, made on first use) and a server certificate signed by it
# (DIR/NAME.pem, DIR/NAME.key) for the subjectAltName SAN, e.g.
# "IP:127.0.0.1,DNS:127.0.0.1" or "DNS:pkg.test". Keys are made here, at
# test time; none is ever committed.
set -euo pipefail
dir=$1 name=$2 san=$3
mkdir -p "$dir"
cd "$dir"
if [ ! -f ca.pem ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=agent-vm test CA" \
    -keyout ca.key -out ca.pem 2>/dev/null
fi
openssl req -newkey rsa:2048 -nodes -subj "/CN=$name" -keyout "$name.key" -out "$name.csr" 2>/dev/null
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" >"$name.ext"
openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
  -extfile "$name.ext" -out "$name.pem" 2>/dev/null
rm -f "$name.csr" "$name.ext"
