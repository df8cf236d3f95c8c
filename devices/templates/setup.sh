#!/usr/bin/env bash
# Sets up edge on this device (profile @DEVICE@): a venv in /opt/edge with the device install (no
# TensorFlow), the bundle, /etc/edge/edge.conf, and the edge-run service, which runs `edge run` with
# reporting and restarts it. Run it as root from the unpacked package: sudo ./setup.sh
set -euo pipefail
cd "$(dirname "$0")"
PREFIX=/opt/edge
ARCHES="@ARCH@"  # what this package was made for
EDGETPU=@EDGETPU@  # yes: install Coral's Edge TPU runtime

fail() { echo "setup: $*" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || fail "run it as root: sudo ./setup.sh"
case " $ARCHES " in
  *" $(uname -m) "*) ;;
  *) echo "setup: warning: this package is for $ARCHES, this machine is $(uname -m)" >&2 ;;
esac
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || fail "edge needs Python 3.10 or newer; python3 here is $(python3 -V 2>&1)"

if [ "$EDGETPU" = yes ] && [ ! -f /etc/apt/sources.list.d/coral-edgetpu.list ]; then
  # The Edge TPU runtime comes from Coral's apt repository.
  apt-get install -y curl gnupg
  curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | gpg --dearmor --yes -o /usr/share/keyrings/coral-edgetpu.gpg
  echo "deb [signed-by=/usr/share/keyrings/coral-edgetpu.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main" \
    > /etc/apt/sources.list.d/coral-edgetpu.list
fi
apt-get update
apt-get install -y @APT@

id -u edge >/dev/null 2>&1 || useradd --system --home-dir /var/lib/edge --shell /usr/sbin/nologin edge
usermod -a -G video edge  # cameras
python3 -m venv "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --quiet --upgrade pip
"$PREFIX/venv/bin/pip" install --quiet ./edge-src
# Swap the bundle in whole: a half-copied bundle is refused by its sha256 anyway, but never leave one.
rm -rf "$PREFIX/bundle.new"
cp -r bundle "$PREFIX/bundle.new"
rm -rf "$PREFIX/bundle"
mv "$PREFIX/bundle.new" "$PREFIX/bundle"
"$PREFIX/venv/bin/python" -c "from edge import read_bundle; read_bundle('$PREFIX/bundle')" \
  || fail "the bundle in $PREFIX/bundle does not load"

install -d -m 755 /etc/edge
if [ -f /etc/edge/edge.conf ]; then
  echo "setup: keeping the existing /etc/edge/edge.conf (the new one is edge.conf here)"
else
  install -m 600 edge.conf /etc/edge/edge.conf
fi
install -m 644 edge-run.service /etc/systemd/system/edge-run.service
systemctl daemon-reload
systemctl enable edge-run
if grep -q '^EDGE_TOKEN=.\+' /etc/edge/edge.conf; then
  systemctl restart edge-run
  echo "setup: edge-run is running; follow it with: journalctl -u edge-run -f"
else
  echo "setup: put the device's token in /etc/edge/edge.conf (EDGE_TOKEN=...), then: systemctl start edge-run"
fi
