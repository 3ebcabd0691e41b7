#!/bin/sh
# Makes the certificates the TLS tests use, in directory $1, with the
# openssl command: a CA; server.pem/server.key and server2.pem/
# server2.key (a second server certificate, for rotation) for
# "localhost" and 127.0.0.1; client.pem/client.key signed by the CA;
# expired.pem/expired.key, a client certificate of the same CA whose
# validity ended in 2020; other.key, a key matching no certificate.
# EC P-256 keys: made in milliseconds, unlike RSA.
set -eu
d=$1
mkdir -p "$d"
cd "$d"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
  -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=eo test CA" \
  -out ca.pem

# sign NAME SUBJECT EXT: NAME.csr signed by the CA into NAME.pem
sign() {
  key "$1.key"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  printf '%s\n' "$3" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -sha256 -days 3650 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
srv="subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth"
sign server "/CN=localhost/O=eo server one" "$srv"
sign server2 "/CN=localhost/O=eo server two" "$srv"
sign client "/CN=eo client/O=eo tests" "extendedKeyUsage=clientAuth"

# The expired one: openssl x509 cannot date a certificate in the past,
# openssl ca can, given its small database.
key expired.key
openssl req -new -key expired.key -subj "/CN=eo expired client" \
  -out expired.csr
: >index.txt
echo 01 >serial
cat >ca.cnf <<CNF
[ca]
default_ca = eo
[eo]
database = index.txt
serial = serial
new_certs_dir = .
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
CNF
openssl ca -batch -config ca.cnf -notext -startdate 20200101000000Z \
  -enddate 20200102000000Z -in expired.csr -out expired.pem 2>/dev/null

key other.key
# encrypted.key: server.key under a passphrase.
openssl pkey -in server.key -aes256 -passout pass:secret -out encrypted.key

key junk.key
: >junk.pem
i=1
while [ $i -le 249 ]; do
  openssl req -x509 -new -key junk.key -subj "/CN=eo junk $i" -days 30 \
    2>/dev/null >>junk.pem
  i=$((i + 1))
done
openssl req -x509 -new -key junk.key -subj "/CN=eo stranger" -days 30 \
  -out stranger.pem
cat junk.pem >>stranger.pem
cp client.pem padded.pem
awk '{ print } /END CERTIFICATE/ && ++n == 30 { exit }' junk.pem >>padded.pem
rm -f ./*.csr ./*.ext
