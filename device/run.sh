#!/usr/bin/env bash
# Builds the device example for thumbv7em-none-eabihf and runs it under qemu-system-arm
# (machine mps2-an386). Exits non-zero if the build fails, a check fails, or it hangs.
#
# qemu-system-arm is unpacked from Debian's packages into a scratch directory and run with
# LD_LIBRARY_PATH: installing it with apt would replace the newer qemu-utils this machine has.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
qemu_dir="${QEMU_DIR:-${TMPDIR:-/tmp}/strata-qemu-arm}"

rustup target add thumbv7em-none-eabihf >/dev/null

qemu="$(command -v qemu-system-arm || true)"
if [ -z "$qemu" ]; then
    qemu="$qemu_dir/usr/bin/qemu-system-arm"
    if [ ! -x "$qemu" ]; then
        mkdir -p "$qemu_dir/debs"
        (
            cd "$qemu_dir/debs"
            [ -n "$(ls /var/lib/apt/lists 2>/dev/null | grep -v lock | head -1)" ] || apt-get update -qq
            apt-get download -qq -o APT::Sandbox::User=root qemu-system-arm libfdt1 libcapstone4 libslirp0 libpmem1 \
                libibverbs1 librdmacm1 libvdeplug2 libndctl6 libdaxctl1 libnl-3-200 \
                libnl-route-3-200
        )
        for deb in "$qemu_dir"/debs/*.deb; do dpkg -x "$deb" "$qemu_dir"; done
    fi
    export LD_LIBRARY_PATH="$qemu_dir/usr/lib/x86_64-linux-gnu:$qemu_dir/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

cd "$here"
cargo build --release --locked
elf="$here/target/thumbv7em-none-eabihf/release/strata-device"
set +e
timeout 300 "$qemu" -machine mps2-an386 -nographic -semihosting-config enable=on,target=native \
    -kernel "$elf"
status=$?
set -e
if [ "$status" -ne 0 ]; then
    echo "device example failed (exit status $status)" >&2
    exit 1
fi
echo "device example passed"
