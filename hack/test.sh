#!/usr/bin/env bash
# The tests, on a fresh machine: installs the Python tools the tests use (hack/test-requirements.txt),
# then runs every test of the workspace. Arguments go to `cargo test` (a test name, --test FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
  -r hack/test-requirements.txt
exec cargo test --workspace --locked "$@"
