#!/usr/bin/env bash
# The main job, from a fresh machine: installs what is missing, builds attnkit, and trains the
# BiLSTM+Attention sentiment model (trainable embedding) on the waimai_10k reviews, on the GPU
# when there is one, printing its training and its test report (the folder
# reports/bilstm-attention-trainable keeps the model, the report and its plots).
# The data: ../shared/data/waimai_10k.csv (with hit_stopwords.txt beside it), or $ATTNKIT_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/configure.sh
build_dir=${ATTNKIT_BUILD_DIR:-build}
data=${ATTNKIT_DATA:-../shared/data/waimai_10k.csv}
if [ ! -f "$data" ]; then
  cat >&2 <<MESSAGE
attnkit: the reviews are not at $data.
Download waimai_10k.csv from https://github.com/SophonPlus/ChineseNlpCorpus (datasets/waimai_10k)
and hit_stopwords.txt from https://github.com/goto456/stopwords into one folder, then run
  ATTNKIT_DATA=/that/folder/waimai_10k.csv scripts/quickstart.sh
MESSAGE
  exit 1
fi
# The command, and the examples the README names next.
cmake --build "$build_dir" --target attnkit_cli attention_focus attnkit_demo
"$build_dir"/bin/attnkit train --model bilstm-attention-trainable --data "$data" --device auto \
  --report reports/bilstm-attention-trainable
