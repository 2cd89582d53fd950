#!/bin/sh
# Install the Debian packages Custos needs to build, test and run its demo.
# As root it installs what is missing with apt-get; otherwise it prints the
# exact command to run and stops.
set -eu

PKGS="make gcc clang libclang-rt-14-dev pkg-config
libssl-dev openssl zlib1g-dev libdeflate-dev libjansson-dev libyaml-dev libpq-dev
libaudit-dev libcap-ng-dev libsystemd-dev libevent-dev libpg-query-dev libprotobuf-c-dev
libcmocka-dev python3 python3-pytest python3-pytest-timeout python3-jsonschema python3-psycopg2 python3-yaml jq gzip util-linux
postgresql-15 postgresql-client-15 pgbouncer auditd gdb passwd systemd
default-jdk-headless libpostgresql-jdbc-java nodejs chromium"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
# npm ships with some builds of nodejs (NodeSource's), as Debian's npm package otherwise
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "custos: missing Debian packages:$missing" >&2
	echo "run:  sudo apt-get update && sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "custos: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq $missing
