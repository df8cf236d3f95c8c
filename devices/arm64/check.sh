#!/usr/bin/env bash
# Runs edge's device side on aarch64 (a Raspberry Pi's architecture) under user-mode emulation on an
# x86-64 host:
#   devices/arm64/check.sh WORK eval BUNDLE --data DIR --json -
#   devices/arm64/check.sh WORK run BUNDLE --source walk.avi --log frames.jsonl --json -
# The first call builds WORK/root (Debian bookworm arm64, minbase + python3.11, about 40 s) and WORK/site
# (aarch64 wheels of the device install); later calls reuse them. Needs debootstrap, qemu-user-static
# and a host Python ($PYTHON) with edge installed, for the requirement list and pip. No arm64 code runs while building.
set -euo pipefail
WORK=${1:?usage: check.sh WORK EDGE-ARGS...}
shift
ROOT=$WORK/root
SITE=$WORK/site
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PYTHON=${PYTHON:-python3}  # a host Python with pip
CPU=cortex-a76  # a Pi 5's core. qemu's default "max" advertises SME, which makes int8 results silently wrong
PLATFORMS=()
for n in 36 35 34 33 32 31 30 29 28 27 26 25 24 23 22 21 20 19 18 17; do
  PLATFORMS+=(--platform "manylinux_2_${n}_aarch64")
done
PLATFORMS+=(--platform manylinux2014_aarch64)  # with fewer tags pip silently picks an old ai-edge-litert

for tool in debootstrap qemu-aarch64-static dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "check.sh: needs $tool: sudo apt install debootstrap qemu-user-static" >&2; exit 2; }
done
mkdir -p "$WORK"

if [ ! -x "$ROOT/usr/bin/python3.11" ]; then
  rm -rf "$ROOT"
  # First stage only: it downloads the .debs; unpacking them by hand runs no arm64 code.
  debootstrap --foreign --variant=minbase --arch=arm64 --include=python3.11 bookworm "$ROOT" "$MIRROR" >&2
  for deb in "$ROOT"/var/cache/apt/archives/*.deb; do
    dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink -C "$ROOT"
  done
  # debootstrap's ROOT/proc leads to the host's /proc, and LiteRT crashes on an x86 /proc/cpuinfo:
  # give it one for the core qemu emulates.
  rm -rf "$ROOT/proc"
  mkdir -p "$ROOT/proc"
  for core in 0 1 2 3; do
    printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n' "$core"
  done > "$ROOT/proc/cpuinfo"
fi

if [ ! -f "$SITE/.complete" ]; then
  rm -rf "$SITE" "$WORK/wheels"
  mapfile -t REQUIREMENTS < <("$PYTHON" -c \
    'from edge.devices.package import device_requirements; print("\n".join(device_requirements()))')
  "$PYTHON" -m pip download --quiet --only-binary=:all: --python-version 3.11 --implementation cp "${PLATFORMS[@]}" \
    -d "$WORK/wheels" "${REQUIREMENTS[@]}" >&2
  "$PYTHON" -m pip install --quiet --no-index --no-deps --python-version 3.11 --implementation cp "${PLATFORMS[@]}" \
    --target "$SITE" "$WORK"/wheels/*.whl >&2
  touch "$SITE/.complete"
fi

# edge's device layers, as `edge package` ships them (a wheel, unpacked), from the edge installed here.
rm -rf "$WORK/code"
"$PYTHON" -c 'import io, sys, zipfile; from edge.devices.package import device_wheel
zipfile.ZipFile(io.BytesIO(device_wheel()[1])).extractall(sys.argv[1])' "$WORK/code"

PYTHONPATH="$SITE:$WORK/code" PYTHONNOUSERSITE=1 exec qemu-aarch64-static -cpu "$CPU" -L "$ROOT" \
  "$ROOT/usr/bin/python3.11" -m edge.cli "$@"
