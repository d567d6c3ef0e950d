#!/usr/bin/env bash
# The one prepared GPU run (benchmarks/gpu.py, issue 32): set up what is missing, say how
# long that took, then measure; results in OUT/gpu.json and OUT/rows.md (default
# benchmarks/_work/gpu).
#
#   benchmarks/gpu.sh [--wheels DIR] [--device cuda|cpu] [--tiny] [--out OUT] [--minutes M]
#
# --wheels DIR: a machine that has torch but reaches no package registry (the lent GPU
# machine): the project's other needs are installed from the wheels that
# benchmarks/gpu_wheels.sh fetched into DIR beforehand, and the checkout is imported as is.
# Without it, `make setup` makes the project's .venv (torch 2.13, CPU build) as `make test`
# does. CI runs `benchmarks/gpu.sh --device cpu --tiny` (tests/test_gpu_script.py).
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=""
if [ "${1:-}" = "--wheels" ]; then
	wheels=$2
	shift 2
fi
start=$(date +%s.%N)
if [ -n "$wheels" ]; then
	python3 -m pip install -q --no-index --no-deps --no-compile --upgrade \
		--target /tmp/cpadv-site "$wheels"/*.whl
	export PYTHONPATH="$PWD:/tmp/cpadv-site${PYTHONPATH:+:$PYTHONPATH}"
	python=python3
else
	make -s setup >/dev/null
	python=.venv/bin/python
fi
setup=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "set up in $setup s"
export PYTHONUNBUFFERED=1
exec "$python" benchmarks/gpu.py --setup-seconds "$setup" "$@"
