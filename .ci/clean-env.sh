#!/usr/bin/env bash
# Run by .ci/run inside `unshare --mount`: hide every C compiler and every header directory,
# then do what the README tells a new user: `make run` (wait for /v1/health, stop it) and a quick
# subset of the tests, in a venv of its own (so a venv with compiled extras cannot help).
set -euo pipefail
cd "$(dirname "$0")/.."

# Compilers become /bin/false; header trees become empty read-only folders.
for f in /usr/bin/gcc* /usr/bin/g++* /usr/bin/cc /usr/bin/c++ /usr/bin/cpp* /usr/bin/clang* \
         /usr/bin/*-linux-gnu-gcc* /usr/bin/*-linux-gnu-g++* /usr/bin/swig*; do
    if [ -f "$f" ]; then mount --bind /bin/false "$f"; fi
done
for d in /usr/include /usr/local/include /root/.pyenv/versions/*/include; do
    if [ -d "$d" ]; then mount -t tmpfs -o ro,size=1m tmpfs "$d"; fi
done
if echo 'int main(void){return 0;}' | gcc -x c - -o /dev/null 2>/dev/null; then
    echo "clean-env: gcc still works; the namespace did not hide it" >&2; exit 1
fi
[ ! -e /usr/include/stdio.h ] || { echo "clean-env: headers still visible" >&2; exit 1; }

mkdir -p build  # git-ignored: absent in a fresh clone
venv=build/ci-clean-venv
data="$(mktemp -d)"
rm -rf "$venv"
port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export LOYALTY_AGENT_API__PORT="$port" LOYALTY_AGENT_STORAGE__DATA_DIR="$data"

start=$(date +%s)
setsid make run VENV="$venv" >build/ci-clean-run.log 2>&1 &
run_pid=$!
stop_agent() { kill -TERM -- "-$run_pid" 2>/dev/null || true; wait "$run_pid" 2>/dev/null || true; }
trap stop_agent EXIT
healthy=""
for _ in $(seq 1 600); do  # up to 10 minutes: the first install downloads the wheels
    if ! kill -0 "$run_pid" 2>/dev/null; then break; fi
    if /usr/bin/python3 - "$port" <<'EOF' 2>/dev/null; then healthy=1; break; fi
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v1/health", timeout=2) as r:
    body = json.load(r)
print(f"clean-env: /v1/health {r.status}: status={body['status']} version={body['version']}")
EOF
    sleep 1
done
stop_agent
trap - EXIT
if [ -z "$healthy" ]; then
    echo "clean-env: make run never answered /v1/health; its output:" >&2
    tail -n 40 build/ci-clean-run.log >&2
    exit 1
fi
echo "clean-env: make run -> healthy agent in $(( $(date +%s) - start )) s"
rm -rf "$data"
unset LOYALTY_AGENT_API__PORT LOYALTY_AGENT_STORAGE__DATA_DIR

# A quick subset: the CLI, the optional device bindings, the station installer.
make test VENV="$venv" PYTEST_ARGS="tests/test_cli.py tests/cards/test_device_extras.py tests/test_locks.py tests/test_packaging.py::test_release_archive_has_the_station_parts_and_no_dev_extras"
