#!/usr/bin/env bash
#  tools/serve.sh: start Quiver with embedded defaults on a fresh Debian 12
#  machine: installs missing packages, builds Release in build/, then runs
#      build/quiver serve --data ./quiver-data --bind tcp://127.0.0.1:19530 ARGS...
#  Extra arguments are passed to `quiver serve` (later flags override).
#  QV_NO_INSTALL=1 skips the package check.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. tools/deps.sh

[ "${QV_NO_INSTALL:-0}" = 1 ] || qv_install_deps build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "${QV_JOBS:-2}"
if [ ! -x build/quiver ]; then
    echo "serve.sh: build/quiver was not built (is tools/quiver.c in this tree?)" >&2
    exit 1
fi
exec build/quiver serve --data ./quiver-data --bind tcp://127.0.0.1:19530 "$@"
