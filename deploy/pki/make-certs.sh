#!/usr/bin/env bash
# make-certs.sh: the fleet's mTLS certificates, with the openssl command and nothing else.
#
#   deploy/pki/make-certs.sh [options] DIR [VIN...]
#
# Makes, in DIR (created if missing; anything already there is kept, so the script is run
# again to add vehicles):
#   ca/ca.crt, ca/ca.key         the fleet CA (EC P-256, 10 years); ca.key never leaves here
#   ca/crl.pem                   the revocation list, re-signed on every run (the broker's crlfile)
#   broker/broker.crt, .key      the broker's server certificate (serverAuth; SAN = --broker-name)
#   cloud/<ID>.crt, <ID>.key     the cloud's client certificate (clientAuth; CN = --cloud-id,
#                                default rapport-cloud); another --cloud-id adds another one
#                                (one per cloud instance of a share group)
#   vehicles/<VIN>/vehicle.crt, vehicle.key, ca.crt
#                                one client certificate per VIN (clientAuth; CN = the VIN),
#                                laid out as /etc/rapport/tls on the head unit
# Options:
#   --broker-name NAME   a DNS name or IP address of the broker (repeat; default: localhost and
#                        127.0.0.1). Only used when the broker certificate is first made.
#   --cloud-id ID        the cloud's MQTT identity (default: rapport-cloud; must match the
#                        ACL's `user` line)
#   --days N             validity of new broker, cloud and vehicle certificates (default: 825)
#   --crl-days N         the CRL's validity (default: 30): re-run the script before it runs out,
#                        or the broker refuses every client
#   --renew VIN          issue VIN a new key and certificate and revoke the old one (repeat)
#   --revoke VIN         revoke VIN's certificate (repeat)
# Keys are written 0600. Exit status 0 on success, 2 on a usage error, 1 if openssl fails.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2; exit 2; }
die() { printf 'make-certs.sh: %s\n' "$*" >&2; exit 2; }

broker_names=()
cloud_id="rapport-cloud"
days=825
crl_days=30
renew=()
revoke=()
positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --broker-name) [ $# -ge 2 ] || die "--broker-name needs a value"; broker_names+=("$2"); shift 2 ;;
    --cloud-id) [ $# -ge 2 ] || die "--cloud-id needs a value"; cloud_id="$2"; shift 2 ;;
    --days) [ $# -ge 2 ] || die "--days needs a value"; days="$2"; shift 2 ;;
    --crl-days) [ $# -ge 2 ] || die "--crl-days needs a value"; crl_days="$2"; shift 2 ;;
    --renew) [ $# -ge 2 ] || die "--renew needs a VIN"; renew+=("$2"); shift 2 ;;
    --revoke) [ $# -ge 2 ] || die "--revoke needs a VIN"; revoke+=("$2"); shift 2 ;;
    -h|--help) usage ;;
    --) shift; positional+=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) positional+=("$1"); shift ;;
  esac
done
[ "${#positional[@]}" -ge 1 ] || usage
dir="${positional[0]}"
vins=("${positional[@]:1}")
[ "${#broker_names[@]}" -gt 0 ] || broker_names=(localhost 127.0.0.1)
case "$days$crl_days" in *[!0-9]*) die "--days and --crl-days take a number of days" ;; esac
[ "$days" -gt 0 ] && [ "$crl_days" -gt 0 ] || die "--days and --crl-days must be at least 1"

# The MQTT username is the certificate's CN, and the ACL's %u pattern puts it in a topic: only
# characters that cannot change a topic's meaning (no '/', '+', '#').
[[ "$cloud_id" =~ ^[A-Za-z0-9._-]{1,64}$ ]] || die "--cloud-id $cloud_id: use 1-64 of A-Z a-z 0-9 . _ -"
# A VIN as rapport reads one: 17 characters, digits and capitals except I, O and Q.
check_vin() { [[ "$1" =~ ^[A-HJ-NPR-Z0-9]{17}$ ]] || die "$1 is not a VIN (17 of 0-9 A-Z without I O Q)"; }
for v in ${vins[@]+"${vins[@]}"} ${renew[@]+"${renew[@]}"} ${revoke[@]+"${revoke[@]}"}; do check_vin "$v"; done
for name in "${broker_names[@]}"; do
  [[ "$name" =~ ^[A-Za-z0-9.:-]+$ ]] || die "--broker-name $name is not a host name or IP address"
done
command -v openssl >/dev/null || { echo "make-certs.sh: the openssl command is needed" >&2; exit 1; }

umask 077
mkdir -p "$dir"/ca "$dir"/broker "$dir"/cloud "$dir"/vehicles
ca="$dir/ca"

# `openssl ca` keeps a database of what it issued (index.txt): that is what makes revocation
# by VIN possible. Its configuration is written next to it.
if [ ! -f "$ca/openssl.cnf" ]; then
  cat >"$ca/openssl.cnf" <<CNF
[ ca ]
default_ca = fleet

[ fleet ]
dir               = .
database          = \$dir/index.txt
new_certs_dir     = \$dir/issued
serial            = \$dir/serial
crlnumber         = \$dir/crlnumber
certificate       = \$dir/ca.crt
private_key       = \$dir/ca.key
default_md        = sha256
policy            = only_cn
unique_subject    = no
copy_extensions   = none
default_crl_days  = 30

[ only_cn ]
commonName        = supplied

[ req ]
distinguished_name = dn
prompt             = no
[ dn ]
CN = unused

[ v3_ca ]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash

[ server ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
subjectAltName         = \${ENV::RAPPORT_SAN}

[ client ]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
CNF
  mkdir -p "$ca/issued"
  : >"$ca/index.txt"
  echo 1000 >"$ca/crlnumber"
  openssl rand -hex 16 >"$ca/serial"
fi
# Every `openssl ca` call runs in the CA's folder, so the relative paths above hold.
in_ca() { (cd "$ca" && RAPPORT_SAN="${RAPPORT_SAN:-DNS:unused}" openssl "$@"); }

if [ ! -f "$ca/ca.crt" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ca/ca.key" 2>/dev/null
  in_ca req -new -x509 -config openssl.cnf -extensions v3_ca -key ca.key -days 3650 \
    -subj "/CN=rapport fleet CA" -out ca.crt
  echo "made the fleet CA: $ca/ca.crt"
fi

# issue NAME_DIR STEM CN EXTENSIONS: a new key and a certificate signed by the CA.
issue() {
  local out="$1" stem="$2" cn="$3" ext="$4"
  mkdir -p "$out"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/$stem.key.new" 2>/dev/null
  openssl req -new -key "$out/$stem.key.new" -subj "/CN=$cn" -out "$out/$stem.csr" 2>/dev/null
  in_ca ca -batch -config openssl.cnf -extensions "$ext" -days "$days" -notext \
    -in "$(cd "$out" && pwd)/$stem.csr" -out "$(cd "$out" && pwd)/$stem.crt.new" 2>/dev/null \
    || { echo "make-certs.sh: openssl ca refused to sign $cn" >&2; exit 1; }
  mv "$out/$stem.key.new" "$out/$stem.key"
  mv "$out/$stem.crt.new" "$out/$stem.crt"
  rm -f "$out/$stem.csr"
  chmod 600 "$out/$stem.key"
  chmod 644 "$out/$stem.crt"
}

# revoke_file CERT REASON: revoke one issued certificate (no-op if already revoked).
revoke_file() {
  local cert reason="$2"
  cert="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
  local err
  err="$(in_ca ca -config openssl.cnf -revoke "$cert" -crl_reason "$reason" 2>&1)" \
    || [[ "$err" == *"Already revoked"* ]] \
    || { printf '%s\n' "$err" >&2; exit 1; }
}

if [ ! -f "$dir/broker/broker.crt" ]; then
  san=""
  for name in "${broker_names[@]}"; do
    if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then san="$san,IP:$name"; else san="$san,DNS:$name"; fi
  done
  RAPPORT_SAN="${san#,}" issue "$dir/broker" broker "${broker_names[0]}" server
  echo "issued the broker certificate for ${broker_names[*]}: $dir/broker/broker.crt"
fi
if [ ! -f "$dir/cloud/$cloud_id.crt" ]; then
  issue "$dir/cloud" "$cloud_id" "$cloud_id" client
  echo "issued the cloud certificate (CN=$cloud_id): $dir/cloud/$cloud_id.crt"
fi

for v in ${revoke[@]+"${revoke[@]}"}; do
  [ -f "$dir/vehicles/$v/vehicle.crt" ] || die "--revoke $v: no certificate was issued to it here"
  revoke_file "$dir/vehicles/$v/vehicle.crt" cessationOfOperation
  echo "revoked $v"
done
for v in ${renew[@]+"${renew[@]}"}; do
  [ -f "$dir/vehicles/$v/vehicle.crt" ] || die "--renew $v: no certificate was issued to it here"
  cp "$dir/vehicles/$v/vehicle.crt" "$dir/vehicles/$v/vehicle.crt.old"
  issue "$dir/vehicles/$v" vehicle "$v" client
  revoke_file "$dir/vehicles/$v/vehicle.crt.old" superseded
  rm -f "$dir/vehicles/$v/vehicle.crt.old"
  echo "renewed $v (the old certificate is revoked)"
done
for v in ${vins[@]+"${vins[@]}"}; do
  if [ -f "$dir/vehicles/$v/vehicle.crt" ]; then
    echo "kept $v (already issued; --renew to replace)"
    continue
  fi
  issue "$dir/vehicles/$v" vehicle "$v" client
  cp "$ca/ca.crt" "$dir/vehicles/$v/ca.crt"
  chmod 644 "$dir/vehicles/$v/ca.crt"
  echo "issued $v: $dir/vehicles/$v/"
done

# The CRL, signed afresh on every run (its nextUpdate moves on by --crl-days).
in_ca ca -config openssl.cnf -gencrl -crldays "$crl_days" -out crl.pem 2>/dev/null \
  || { echo "make-certs.sh: openssl ca could not sign the CRL" >&2; exit 1; }
chmod 644 "$ca/crl.pem" "$ca/ca.crt"
echo "signed the CRL ($crl_days days): $ca/crl.pem"
