#!/usr/bin/env bash
# The attack tables of BENCHMARKS.md against the shipped weights, one command after
# another, each report kept in $OUT as soon as it is written (a run cut short keeps the
# finished ones). Slides: `make weights` writes them to build/weights-data/.
# Usage: [SCALE=bench|paper] benchmarks/attack_tables.sh [OUT] [PART...]
#   (parts: region sweep transfer latent universal, and lca: bench_lca.py's convergence
#   and region)
# SCALE=bench (the default; `make bench`): seed 000's per-pixel budgets (L2 25 on a
# 512 x 512 x 3 tile is an RMS of 0.0282) on 256-pixel level-2 tiles: the region attack
# over the four tiles a 1024 x 1024 rectangle drawn off the grid touches, the sweeps and
# the transfer on the one tile of level-0 x 4096-5120, y 3072-4096 (the tumours, x
# 3264-5290 y 3734-4942, reach into its lower part), the sweep without --check; seed
# 001's universal perturbation at its own sizes: about 25 minutes on 2 cores. SCALE=paper: seed 000's 512-pixel tiles and total budgets over 4096 x 4096
# (four tiles of 512), with the sweep's convergence check: about four hours on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-bench}
OUT=${1:-benchmarks/results/attack_tables-$SCALE}
shift || true
PARTS=${*:-region sweep transfer latent universal}  # lca: its own table (bench_lca.py)
DATA=build/weights-data
CPADV=".venv/bin/cpadv"
case $SCALE in
bench)
    R="--level 2 --tile 256 --annotations $DATA/slide21.xml"
    AREA="--region 4096 3072 1024 1024"  # one tile: the tumours' top edge and stroma
    OFFGRID="--region 3253 3314 1024 1024"  # off the 1024-pixel level-0 tile grid
    B25="--unit per_pixel --budget 0.0282"
    SWEEP="--unit per_pixel --budgets 0.0113 0.0282 0.0395 0.0564"
    CHECK=""
    LATENT="--unit per_pixel --budgets 0.0282 0.0564" ;;
paper)
    R="--level 2 --tile 512 --annotations $DATA/slide21.xml"
    AREA="--region 2048 2048 4096 4096"
    OFFGRID="--region 3253 3314 2048 2048"
    B25="--budget 25"
    SWEEP="--budgets 10 25 35 50"
    CHECK="--check"
    LATENT="--budgets 25 50" ;;
*) echo "SCALE is bench or paper, not $SCALE" >&2; exit 2 ;;
esac
mkdir -p "$OUT"
log() { echo "$(date -u +%FT%TZ) $*" >> "$OUT/times.log"; }
run() {  # name, command... (its --out is $OUT/name: a run of before is replaced, since
    # cpadv refuses to write into a folder that holds a run)
    local name=$1; shift
    rm -rf "${OUT:?}/$name"
    log "start $name: $*"
    local t0=$SECONDS
    "$@" > "$OUT/$name.stdout" 2> "$OUT/$name.stderr"
    log "done $name in $((SECONDS - t0)) s"
}
for part in $PARTS; do
    case $part in
    region)  # a rectangle drawn off the tile grid over the tumours
        run region_offgrid $CPADV attack $DATA/slide21.tif --detector dae --attack fgsm \
            $B25 $OFFGRID $R --score-with dae --out "$OUT/region_offgrid" ;;
    sweep)
        run sweep_dae $CPADV sweep $DATA/slide21.tif $AREA $R \
            --detector dae --attack fgsm $SWEEP $CHECK --out "$OUT/sweep_dae" ;;
    transfer)
        run transfer $CPADV transfer $DATA/slide21.tif $AREA $R \
            $B25 --steps 100 --out "$OUT/transfer" ;;
    lca)
        run bench_lca .venv/bin/python benchmarks/bench_lca.py convergence region ;;
    latent)
        run sweep_sparse_latent $CPADV sweep $DATA/slide21.tif $AREA \
            $R --detector sparse --attack latent $LATENT $CHECK \
            --out "$OUT/sweep_sparse_latent" ;;
    universal)  # seed 001's universal perturbation on resnet18, at the paper's sizes
        for b in 4 8 12 16; do
            run universal_linf$b $CPADV universal $DATA/patches1{1,2,3,4,5} \
                --holdout $DATA/patches21 --detector resnet18 --norm linf --unit per_pixel \
                --budget $b --epochs 10 --batch 16 --out "$OUT/universal_linf$b"
        done ;;
    *) echo "unknown part $part" >&2; exit 2 ;;
    esac
done
