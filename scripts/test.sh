#!/bin/bash
# Build warning-free and run the whole test suite (unit + integration).
# Run as root on Debian after scripts/install-deps.sh.
set -eu
cd "$(dirname "$0")/.."
autoreconf -fi
./configure -q --enable-werror
make -j2
make check -j1 || { cat tests/unit/*.log tests/integration/*.log 2>/dev/null | tail -200; exit 1; }
