#!/usr/bin/env bash
# Makes a throwaway CA and certificates for trying TLS/mTLS and for tests:
#   gen-test-certs.sh DIR [CA_NAME]
# writes DIR/ca.pem, DIR/ca.key and, each signed by that CA:
#   DIR/node.pem, node.key   server+client certificate for the nodes
#                            (CN spate-node; SAN localhost, 127.0.0.1, ::1)
#   DIR/client.pem, .key     client certificate (CN client)
#   DIR/alice.pem, .key      client certificate (CN alice): a user name for
#                            certificate authentication (docs/security.md)
# Run it twice with different DIRs to get two unrelated CAs. Keys are
# unencrypted 2048-bit RSA valid for 10 days: for tests, never production.
set -euo pipefail
dir="${1:?usage: gen-test-certs.sh DIR [CA_NAME]}"
ca_name="${2:-spate-test-ca}"
mkdir -p "$dir"
cd "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 10 -subj "/CN=$ca_name" \
  -keyout ca.key -out ca.pem 2>/dev/null
issue() {  # name common_name extensions
  local name="$1" cn="$2" ext="$3"
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn" \
    -keyout "$name.key" -out "$name.csr" 2>/dev/null
  printf '%b' "$ext" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key \
    -CAcreateserial -days 10 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}
issue node spate-node \
  "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
issue client client \
  "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
issue alice alice \
  "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
rm -f ca.srl
echo "wrote $dir: ca.pem node.pem/.key client.pem/.key alice.pem/.key"
