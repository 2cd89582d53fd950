#!/bin/sh
# install.sh - installs Custos: `make install [PREFIX=/usr] [DESTDIR=...]`.
#
#   sh scripts/install.sh BUILD_DIR
#
# Installs custosd and custosctl, the systemd unit, sysusers.d and
# tmpfiles.d entries, the example configuration (never over an existing
# one), the policies, the schemas and the documentation. Then, on a live
# system (no DESTDIR): systemd-sysusers; systemd-tmpfiles --create;
# systemctl daemon-reload; put the master key in /etc/custos/master.key.
set -eu
BUILD=${1:?usage: install.sh BUILD_DIR}
PREFIX=${PREFIX:-/usr}
DESTDIR=${DESTDIR:-}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
here=$(cd "$(dirname "$0")/.." && pwd)

d() { install -d -m "$1" "$DESTDIR$2"; }
f() { install -m "$1" "$2" "$DESTDIR$3"; }

d 0755 "$PREFIX/sbin"
d 0755 "$PREFIX/bin"
f 0755 "$BUILD/custosd" "$PREFIX/sbin/custosd"
f 0755 "$BUILD/custosctl" "$PREFIX/bin/custosctl"

d 0755 "$UNITDIR"
sed -e "s|/usr/sbin/custosd|$PREFIX/sbin/custosd|g" -e "s|/etc/custos|$SYSCONFDIR/custos|g" \
	"$here/scripts/custosd.service" > "$DESTDIR$UNITDIR/custosd.service"
chmod 0644 "$DESTDIR$UNITDIR/custosd.service"
d 0755 "$PREFIX/lib/sysusers.d"
f 0644 "$here/scripts/custos.sysusers" "$PREFIX/lib/sysusers.d/custos.conf"
d 0755 "$PREFIX/lib/tmpfiles.d"
f 0644 "$here/scripts/custos.tmpfiles" "$PREFIX/lib/tmpfiles.d/custos.conf"

d 0750 "$SYSCONFDIR/custos"
if [ -e "$DESTDIR$SYSCONFDIR/custos/custosd.conf" ]; then
	f 0640 "$here/scripts/custosd.conf" "$SYSCONFDIR/custos/custosd.conf.example"
	echo "install.sh: kept $SYSCONFDIR/custos/custosd.conf; the example is custosd.conf.example"
else
	f 0640 "$here/scripts/custosd.conf" "$SYSCONFDIR/custos/custosd.conf"
fi

share="$PREFIX/share/custos"
d 0755 "$share/policies"
d 0755 "$share/schemas"
f 0644 "$here/policies/shop.yaml" "$share/policies/shop.yaml"
f 0644 "$here/policies/README.md" "$share/policies/README.md"
for s in "$here"/schemas/*.sql "$here"/schemas/*.json; do
	f 0644 "$s" "$share/schemas/$(basename "$s")"
done
d 0755 "$PREFIX/share/doc/custos"
f 0644 "$here/README.md" "$PREFIX/share/doc/custos/README.md"
f 0644 "$here/SECURITY.md" "$PREFIX/share/doc/custos/SECURITY.md"
echo "install.sh: installed into ${DESTDIR:-/}$PREFIX"
