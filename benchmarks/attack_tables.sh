#!/usr/bin/env bash
# The attack tables of BENCHMARKS.md against the shipped weights, one command after
# another, each report kept in $OUT as soon as it is written (a run cut short keeps the
# finished ones). Slides: `make weights` writes them to build/weights-data/.
# Usage: benchmarks/attack_tables.sh [OUT] [PART...]  (parts: region sweep transfer lca latent)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/issue14}
shift || true
PARTS=${*:-region sweep transfer lca latent}
DATA=build/weights-data
CPADV=".venv/bin/cpadv"
R="--level 2 --tile 512 --annotations $DATA/slide21.xml"
mkdir -p "$OUT"
log() { echo "$(date -u +%FT%TZ) $*" >> "$OUT/times.log"; }
run() {  # name, command...
    local name=$1; shift
    log "start $name: $*"
    local t0=$SECONDS
    "$@" > "$OUT/$name.stdout" 2> "$OUT/$name.stderr"
    log "done $name in $((SECONDS - t0)) s"
}
for part in $PARTS; do
    case $part in
    region)  # a rectangle drawn off the tile grid over the tumours (x 3264-5290, y 3734-4942)
        run region_offgrid $CPADV attack $DATA/slide21.tif --detector dae --attack fgsm \
            --budget 25 --region 3253 3314 2048 2048 $R --score-with dae \
            --out "$OUT/region_offgrid" ;;
    sweep)
        run sweep_dae $CPADV sweep $DATA/slide21.tif --region 2048 2048 4096 4096 $R \
            --detector dae --attack fgsm --budgets 10 25 35 50 --check --out "$OUT/sweep_dae" ;;
    transfer)
        run transfer $CPADV transfer $DATA/slide21.tif --region 2048 2048 4096 4096 $R \
            --budget 25 --steps 100 --out "$OUT/transfer" ;;
    lca)
        run bench_lca .venv/bin/python benchmarks/bench_lca.py convergence region ;;
    latent)
        run sweep_sparse_latent $CPADV sweep $DATA/slide21.tif --region 2048 2048 4096 4096 \
            $R --detector sparse --attack latent --budgets 25 50 --check \
            --out "$OUT/sweep_sparse_latent" ;;
    *) echo "unknown part $part" >&2; exit 2 ;;
    esac
done
