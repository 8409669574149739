#!/usr/bin/env bash
# CI of the Python package: on a machine with Rust, Python 3.9+ (3.11 in CI) with pip, and Java 17,
# creates a virtual environment, installs the pinned tools, builds and installs the package
# from this checkout, and runs its tests, the Spark one included (Spark in local mode).
#
#   bash python/ci.sh
#
# PYTHON chooses the interpreter (default python3); KHABAR_VENV the environment (default
# python/.venv, reused when it exists). The build shares the root crate's target directory
# (target/, or $CARGO_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
venv=${KHABAR_VENV:-python/.venv}

"$python" --version
cargo --version
java -version 2>&1 | head -n 1

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# The build backend runs the `maturin` command: the environment's bin/ comes first on PATH.
export PATH="$(cd "$venv" && pwd)/bin:$PATH"
# Pinned: the build backend, the test runner, and what the Arrow and Spark tests need
# (pyspark's mapInArrow imports pandas).
"$venv/bin/python" -m pip install --quiet \
    maturin==1.16.0 pytest==9.2.0 pyarrow==26.0.1 pyspark==4.3.0 pandas==2.3.3

# The documented install (`pip install ./python`), with the pinned maturin rather than whatever
# version an isolated build environment would fetch.
"$venv/bin/python" -m pip install --no-build-isolation --force-reinstall --no-deps ./python

# From the repository root, so that `import khabar` is the installed package, not python/khabar.
KHABAR_REQUIRE_SPARK=1 "$venv/bin/python" -m pytest -q python/tests
