#!/usr/bin/env bash
# Rebuild every bundled asset from MNIST with the project's own CLI. Deterministic seeds.
# Usage: bash assets/build.sh [DATA_ROOT]   (default ../shared/data; about 10 minutes on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data}
M=assets/models
mkdir -p "$M"
for kind in vae ae; do
  python -m vae.train --model $kind --arch mlp --latent-dim 2 --hidden 512,256 --epochs 30 --batch-size 128 --lr 0.001 --no-bias-init --seed 0 --threads 1 \
    --data-dir "$DATA" --half --name "${kind^^} 2-d (bundled)" --out "$M/$kind-2d.safetensors" --no-progress
  python -m vae.train --model $kind --arch mlp --latent-dim 16 --hidden 512,256 --epochs 30 --batch-size 128 --lr 0.001 --no-bias-init --seed 0 --threads 1 \
    --data-dir "$DATA" --half --name "${kind^^} 16-d (bundled)" --out "$M/$kind-16d.safetensors" --no-progress
done
python -m vae.train --model ae --arch mlp --latent-dim 16 --hidden 512,256 --input-noise 0.5 --epochs 30 --batch-size 128 --lr 0.001 --no-bias-init --seed 0 --threads 1 --data-dir "$DATA" --half --name "AE 16-d denoising (bundled)" --out "$M/dae-16d.safetensors" --no-progress  # AE 16-d's recipe, trained on noisy digits (the Denoising page)
python -m vae.classifier --data-dir "$DATA" --epochs 3 --seed 0 --threads 1 --out "$M/classifier.safetensors"
python -m vae.assets --data-dir "$DATA"   # MNIST test digits, precomputed maps and Welcome pictures of every bundled model
