#!/bin/sh
# Builds PostgreSQL 15's own src/test/modules/test_shm_mq from Debian's source package with PGXS
# and installs it into the installed PostgreSQL 15, for the side-by-side bench
# (tests/benches/test_shm_mq.rs) and the differential trial in tests/tests/test_shm_mq.rs.
#
# Does nothing when test_shm_mq.so is already installed. Needs root, apt with a deb-src line
# for the machine's suite (added here when missing), network to Debian, and
# postgresql-server-dev-15. Everything happens in a scratch directory outside the repository
# (SCRATCH, default /tmp/pgipc-pg15-test-shm-mq); nothing of PostgreSQL's source or build is
# kept in the repository.
set -eu

PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
SCRATCH=${SCRATCH:-/tmp/pgipc-pg15-test-shm-mq}

if [ ! -x "$PG_CONFIG" ]; then
    echo "test_shm_mq_pg15: $PG_CONFIG missing (apt-get install postgresql-15 postgresql-server-dev-15)" >&2
    exit 1
fi
pkglib=$("$PG_CONFIG" --pkglibdir)
sharedir=$("$PG_CONFIG" --sharedir)
if [ -f "$pkglib/test_shm_mq.so" ] && [ -f "$sharedir/extension/test_shm_mq.control" ]; then
    echo "test_shm_mq_pg15: already installed in $pkglib"
    exit 0
fi

# A deb-src line for this machine's suite, when apt has none.
if ! grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    . /etc/os-release
    cat >/etc/apt/sources.list.d/pgipc-debsrc.sources <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $VERSION_CODENAME $VERSION_CODENAME-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -q
fi

mkdir -p "$SCRATCH"
cd "$SCRATCH"
if ! ls postgresql-15_*.dsc >/dev/null 2>&1; then
    apt-get source --download-only postgresql-15
fi
dsc=$(ls postgresql-15_*.dsc | tail -n 1)
src=$(ls -d postgresql-15-*/ 2>/dev/null | tail -n 1 || true)
if [ -z "$src" ]; then
    dpkg-source --no-check -x "$dsc" >/dev/null
    src=$(ls -d postgresql-15-*/ | tail -n 1)
fi
mod="$SCRATCH/$src/src/test/modules/test_shm_mq"
make -C "$mod" USE_PGXS=1 PG_CONFIG="$PG_CONFIG"
make -C "$mod" USE_PGXS=1 PG_CONFIG="$PG_CONFIG" install
echo "test_shm_mq_pg15: installed $pkglib/test_shm_mq.so"
