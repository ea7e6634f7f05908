#!/usr/bin/env bash
# System packages the tests need beyond Python: fuse3 (libfuse3.so.3 and fusermount3) for the slow,
# lockless FUSE filesystem of tests/slowfs.py. Installs them with apt where they are missing and this
# runs as root (CI); otherwise says what to install and leaves the choice to the user (the test then
# skips, naming what is missing, unless SEDS_REQUIRE_FUSE=1).
set -euo pipefail
if command -v fusermount3 >/dev/null && ldconfig -p | grep -q 'libfuse3\.so\.3'; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends fuse3 >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends fuse3 >/dev/null; }
    echo "system_packages: installed fuse3"
else
    echo "system_packages: fuse3 is missing; install it (Debian/Ubuntu: sudo apt-get install fuse3) for tests/slowfs.py" >&2
fi
