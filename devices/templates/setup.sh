#!/usr/bin/env bash
# Sets up edge on this device (profile @DEVICE@): a venv in /opt/edge with the device install (no
# TensorFlow), the bundle, /etc/edge/edge.conf, and the edge-run service, which runs `edge run` with
# reporting and restarts it. Run it as root from the unpacked package: sudo ./setup.sh
# Another Python than python3 (edge needs 3.10+): sudo PYTHON=/path/to/python3.11 ./setup.sh
set -euo pipefail
cd "$(dirname "$0")"
PREFIX=/opt/edge
PYTHON=${PYTHON:-python3}
ARCHES="@ARCH@"  # what this package was made for
EDGETPU=@EDGETPU@  # yes: install Coral's Edge TPU runtime
IMX500=@IMX500@  # yes: the AI Camera: picamera2 from Pi OS, and network.rpk made from the bundle's packerOut.zip
# edge's extras the service's edge run needs, e.g. [follow,mqtt]: follow (cryptography) to verify the model
# versions it follows, signed with edge-sign.pub; mqtt (paho-mqtt) to publish its calls to a broker.
EXTRAS="@EXTRAS@"
GROUPS_NEEDED="@GROUPS@"  # the service's groups: cameras, and the Edge TPU's device node

fail() { echo "setup: $*" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || fail "run it as root: sudo ./setup.sh"
case " $ARCHES " in
  *" $(uname -m) "*) ;;
  *) echo "setup: warning: this package is for $ARCHES, this machine is $(uname -m)" >&2 ;;
esac
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null \
  || fail "edge needs Python 3.10 or newer; $PYTHON here is $("$PYTHON" -V 2>&1): install one, then sudo PYTHON=/path/to/python3.11 ./setup.sh"

apt-get update
# The Edge TPU runtime comes from Coral's apt repository (Mendel already has it).
if [ "$EDGETPU" = yes ] && ! grep -rqs coral-edgetpu /etc/apt/sources.list /etc/apt/sources.list.d/; then
  apt-get install -y curl gnupg
  curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | gpg --dearmor --yes -o /usr/share/keyrings/coral-edgetpu.gpg
  echo "deb [signed-by=/usr/share/keyrings/coral-edgetpu.gpg] https://packages.cloud.google.com/apt coral-edgetpu-stable main" \
    > /etc/apt/sources.list.d/coral-edgetpu.list
  apt-get update
fi
apt-get install -y @APT@
if [ "$EDGETPU" = yes ] && command -v udevadm >/dev/null; then
  # libedgetpu's udev rule gives the USB Accelerator to plugdev; apply it without a replug.
  udevadm control --reload-rules && udevadm trigger
fi

for group in $GROUPS_NEEDED; do
  getent group "$group" >/dev/null || groupadd --system "$group"  # the unit refuses to start without them
done
id -u edge >/dev/null 2>&1 || useradd --system --home-dir /var/lib/edge --shell /usr/sbin/nologin edge
if [ "$IMX500" = yes ]; then
  # picamera2 and libcamera's Python bindings come from Pi OS's packages, not the package index: the venv sees them.
  "$PYTHON" -m venv --system-site-packages "$PREFIX/venv"
else
  "$PYTHON" -m venv "$PREFIX/venv"
fi
"$PREFIX/venv/bin/pip" install --quiet --upgrade pip
# edge's device install and what it and its EXTRAS require (numpy, OpenCV, click, LiteRT, ...); then its code
# again, for a package of the same version with newer code, which pip would otherwise take as already installed.
"$PREFIX/venv/bin/pip" install --quiet "./@WHEEL@$EXTRAS"
"$PREFIX/venv/bin/pip" install --quiet --force-reinstall --no-deps ./@WHEEL@
# Check the new bundle, then swap it in whole: the running one stays until its successor is known good.
rm -rf "$PREFIX/bundle.new"
cp -r bundle "$PREFIX/bundle.new"
if [ "$IMX500" = yes ]; then
  # The sensor loads an .rpk, which imx500-package (imx500-tools) makes from the converter's packerOut.zip.
  packed=$(mktemp -d)
  imx500-package -i "$PREFIX/bundle.new/packerOut.zip" -o "$packed" \
    || fail "imx500-package could not package the network (see above); $PREFIX/bundle is unchanged"
  rpk=$(find "$packed" -name '*.rpk' | head -n 1)
  [ -n "$rpk" ] || fail "imx500-package wrote no .rpk into $packed; $PREFIX/bundle is unchanged"
  cp "$rpk" "$PREFIX/bundle.new/network.rpk"
  rm -rf "$packed"
  "$PREFIX/venv/bin/python" -c "from picamera2.devices import IMX500" \
    || fail "picamera2's IMX500 helper does not import in $PREFIX/venv (see above): apt install python3-picamera2"
fi
"$PREFIX/venv/bin/python" -c "import sys; from edge import read_bundle; read_bundle(sys.argv[1])" "$PREFIX/bundle.new" \
  || fail "the bundle in this package does not load (see above); $PREFIX/bundle is unchanged"
rm -rf "$PREFIX/bundle"
mv "$PREFIX/bundle.new" "$PREFIX/bundle"

install -d -m 755 /etc/edge
if [ -f edge-sign.pub ]; then  # packed for a device that follows the model versions the host names
  install -o root -g root -m 644 edge-sign.pub /etc/edge/edge-sign.pub  # the key model versions must be signed with
fi
# edge.conf holds the token, the source (which may carry a password), the broker's password and the webhook's
# URL: root's, and no one else may read it.
if [ -f /etc/edge/edge.conf ]; then
  echo "setup: keeping the existing /etc/edge/edge.conf (the new one is edge.conf here)"
  chown root:root /etc/edge/edge.conf
  chmod 600 /etc/edge/edge.conf
else
  install -o root -g root -m 600 edge.conf /etc/edge/edge.conf
fi
install -m 644 edge-run.service /etc/systemd/system/edge-run.service
systemctl daemon-reload
# Enabled only with a token: without one edge run refuses to start, and the unit would restart forever.
if grep -q '^EDGE_TOKEN=.\+' /etc/edge/edge.conf; then
  systemctl enable edge-run
  systemctl restart edge-run
  echo "setup: edge-run is running; follow it with: journalctl -u edge-run -f"
  echo "setup: the token is in /etc/edge/edge.conf now: delete this package (the .tar.gz and this folder)"
else
  echo "setup: put the device's token in /etc/edge/edge.conf (EDGE_TOKEN=...), then: systemctl enable --now edge-run"
fi
