"""Run open_clip_train (the reference trainer) on our shards with one of our model JSONs.

Input: ``--model-config configs/models/wit-tiny.json`` followed by open_clip_train's own
arguments (``--train-data 'DIR/{00000..00003}.tar' --dataset-type webdataset ...``).
Output: whatever ``open_clip_train.main`` writes (``--logs DIR``). The model JSON is registered
with ``open_clip.add_model_config`` in this process (open_clip_train only knows its bundled
configs), and ``--model`` is set to its name. Nothing is dropped here.

    python -m trainer.interop --model-config configs/models/wit-tiny.json -- \\
        --train-data 'out/shards/{00000..00003}.tar' --dataset-type webdataset ...

No ``--train-num-samples``: open_clip_train reads the sample count from the shards' sizes.json.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from typing import Optional, Sequence

from trainer.model import register_model_config


def brace_pattern(shard_dir: str) -> str:
    """``DIR/{00000..0000N}.tar`` for the tars of ``shard_dir`` (open_clip_train's syntax)."""
    names = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(shard_dir, "*.tar")))
    if not names:
        raise FileNotFoundError(f"no .tar shards in {shard_dir}")
    if len(names) == 1:
        return os.path.join(shard_dir, f"{names[0]}.tar")
    return os.path.join(shard_dir, "{" + f"{names[0]}..{names[-1]}" + "}.tar")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.interop")
    parser.add_argument("--model-config", required=True, help="open_clip model JSON")
    args, rest = parser.parse_known_args(argv)
    rest = [a for a in rest if a != "--"]
    name = register_model_config(args.model_config)
    if "--model" not in rest:
        rest = ["--model", name] + rest
    from open_clip_train.main import main as open_clip_train_main

    open_clip_train_main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
