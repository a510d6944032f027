#!/usr/bin/env bash
#  tools/deps.sh: the one list of Debian packages Quiver needs, and the function
#  that installs whatever of it is missing.  Sourced by tools/serve.sh,
#  tools/test.sh and tools/Dockerfile; run directly it installs:
#      tools/deps.sh [build|test]
#
#  apt-get is called only when a package is missing, so a machine that already
#  has everything pays one dpkg-query and nothing else.

#  Build: compiler, CMake and the libraries CMakeLists.txt links.
#  ca-certificates: npm (test) and libcurl (S3 over https) verify TLS with it.
#  libmicrohttpd + jansson: the REST gateway (--http; jansson also qvctl's JSON);
#  libcurl also drives the gateway's tests.
#  libsodium: password hashes of the user store (--auth); libzmq depends on it.
QV_APT_BUILD=(
    build-essential cmake pkg-config ca-certificates
    libopenblas-dev
    libzmq3-dev libczmq-dev libnats-dev libmsgpack-dev libs3-dev
    libcmocka-dev libroaring-dev libzstd-dev libisal-dev
    libcurl4-openssl-dev libxml2-dev libjansson-dev
    libmicrohttpd-dev libsodium-dev
)
#  Tests also run a NATS server (the S3 server, s3rver, comes from npm), the Python
#  client's tests (Debian's python3 with its ZeroMQ, msgpack and numpy modules),
#  tests/compose/test_compose.py, which parses docker-compose.yml (python3-yaml), and
#  the fuzz harnesses (tools/fuzz.sh, run by tools/test.sh: clang and its libFuzzer runtime),
#  and openssl, which makes the certificate of the NATS TLS test.
QV_APT_TEST=(nats-server openssl python3 python3-zmq python3-msgpack python3-numpy python3-yaml
             clang libclang-rt-14-dev)

#  qv_missing_packages PKG...: print the packages that are not installed.
qv_missing_packages () {
    local pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null \
            | grep -q '^install ok installed$' || printf '%s\n' "$pkg"
    done
}

#  qv_install_deps build|test: install the missing packages of that set.
#  "test" adds nats-server, and nodejs+npm unless node and npm are already on
#  PATH (a dev machine may have them from elsewhere).
qv_install_deps () {
    local set=${1:-build}
    local -a want=("${QV_APT_BUILD[@]}") missing=()
    if [ "$set" = test ]; then
        want+=("${QV_APT_TEST[@]}")
        command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
            || want+=(nodejs npm)
    fi
    mapfile -t missing < <(qv_missing_packages "${want[@]}")
    if [ ${#missing[@]} -eq 0 ]; then
        echo "deps: all ${#want[@]} packages present"
        return 0
    fi
    echo "deps: installing ${missing[*]}"
    local -a sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            echo "deps: not root and no sudo; install: ${missing[*]}" >&2
            return 1
        }
        sudo=(sudo)
    fi
    #  Lock timeout: on a freshly booted machine apt may still be busy.
    local -a apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get
                  -o DPkg::Lock::Timeout=600 -q -y)
    "${apt[@]}" update </dev/null \
        && "${apt[@]}" install --no-install-recommends "${missing[@]}" </dev/null
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    qv_install_deps "${1:-build}"
fi
