#!/usr/bin/env bash
# The CPU kernels on aarch64, from an x86-64 Linux host: a Debian arm64 chroot run under
# qemu-user, NumPy's and Numba's aarch64 wheels from PyPI, and tools/smoke.py (every op,
# float32 and float64, against the reference). Slow: LLVM itself runs emulated, so the
# first run takes tens of minutes; the chroot is kept for the next.
#
#   sudo bash tools/arm64_check.sh [CHROOT_DIR]      (default /var/tmp/kernelgrad-arm64)
#
# Needs root (debootstrap, chroot, binfmt_misc), Debian's qemu-user-static, binfmt-support
# and debootstrap (apt-get install qemu-user-static binfmt-support debootstrap), and the
# network for the first run.
set -euo pipefail
root=${1:-/var/tmp/kernelgrad-arm64}
repo=$(cd "$(dirname "$0")/.." && pwd)
for tool in debootstrap qemu-aarch64-static update-binfmts; do
    command -v "$tool" > /dev/null || {
        echo "arm64 check: $tool is missing (apt-get install qemu-user-static" \
             "binfmt-support debootstrap)"; exit 2; }
done
if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    mountpoint -q /proc/sys/fs/binfmt_misc ||
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    update-binfmts --enable qemu-aarch64
fi
if [ ! -x "$root/usr/bin/python3" ]; then
    echo "arm64 check: building the chroot in $root (several minutes)"
    debootstrap --arch=arm64 --include=python3,python3-venv,python3-pip,ca-certificates \
        bookworm "$root" http://deb.debian.org/debian
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
# the host's certificate bundle, so that pip there trusts what pip here trusts (a proxy's CA)
cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$root/etc/ssl/certs/host-bundle.crt"
# the project as committed, plus what is not yet committed: the working tree's files
rm -rf "$root/kernelgrad" && mkdir -p "$root/kernelgrad"
(cd "$repo" && git ls-files -co --exclude-standard | tar -cf - -T -) | tar -xf - -C "$root/kernelgrad"
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
trap 'umount "$root/proc" 2> /dev/null || true' EXIT
# a clean environment: the host's PIP_* and certificate paths mean nothing in the chroot
chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root \
    PIP_CERT=/etc/ssl/certs/host-bundle.crt /bin/bash -c '
set -euo pipefail
cd /kernelgrad
[ -x /venv/bin/python ] || python3 -m venv /venv
/venv/bin/pip install -q numpy numba safetensors
echo "arm64 check: $(uname -m), $(/venv/bin/python -c "import numpy, numba; print(\"NumPy\", numpy.__version__, \"Numba\", numba.__version__)")"
PYTHONPATH=. /venv/bin/python tools/smoke.py
'
