"""A retrieval eval set we did not generate: Tux Paint's stamps, each a real picture with a sentence.

Input: Debian's ``tuxpaint-stamps-default`` package (``apt-get download``; GPL-2, so it is
fetched here, never shipped in the repository), or an already unpacked tree (``--unpacked``).
Each stamp is a PNG (most are photographs cut out of their background, some drawings) beside a
``.txt`` whose first line is its English description ("A US 25 cent piece ($.25) called a
quarter.").
Output: ``OUT/<category>_<name>.jpg`` (flattened on white, longest side ``--size``) beside
``OUT/<category>_<name>.txt`` (the sentence): the pairs folder that ``wit ab --eval pairs:OUT``
and trainer/eval_tasks.py ``run_pair_retrieval`` read. Skipped and counted: mirrored copies
(``*_mirror.png``, the same picture flipped), stamps without a description, unreadable PNGs.

    .venv/bin/python -m bench.tuxpaint_pairs --output /tmp/tuxpaint_pairs [--size 224] [--limit 0]
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile

from PIL import Image, UnidentifiedImageError

PACKAGE = "tuxpaint-stamps-default"
STAMPS = "usr/share/tuxpaint/stamps"


def unpack(workdir: str) -> str:
    """Download the package with apt-get and unpack it under ``workdir``; the stamps' root."""
    debs = glob.glob(os.path.join(workdir, f"{PACKAGE}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", PACKAGE], cwd=workdir, check=True)
        debs = glob.glob(os.path.join(workdir, f"{PACKAGE}_*.deb"))
    root = os.path.join(workdir, "x")
    if not os.path.isdir(os.path.join(root, STAMPS)):
        subprocess.run(["dpkg", "-x", debs[0], root], check=True)
    return os.path.join(root, STAMPS)


def description(text_path: str) -> str:
    """The English sentence: the file's first line (the other lines are ``lang.utf8=...``)."""
    with open(text_path, encoding="utf-8", errors="replace") as fh:
        first = fh.readline().strip()
    return "" if "=" in first.split(" ", 1)[0] else first


def write_pairs(stamps: str, out: str, size: int = 224, limit: int = 0) -> dict:
    """Write the pairs folder; return counts (written and each skip reason)."""
    os.makedirs(out, exist_ok=True)
    counts = {"written": 0, "mirror": 0, "no_description": 0, "unreadable": 0}
    for png in sorted(glob.glob(os.path.join(stamps, "**", "*.png"), recursive=True)):
        if limit and counts["written"] >= limit:
            break
        stem = os.path.splitext(png)[0]
        if stem.endswith("_mirror"):
            counts["mirror"] += 1
            continue
        text = description(stem + ".txt") if os.path.isfile(stem + ".txt") else ""
        if not text:
            counts["no_description"] += 1
            continue
        try:
            with Image.open(png) as im:
                rgba = im.convert("RGBA")
        except (OSError, UnidentifiedImageError):
            counts["unreadable"] += 1
            continue
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        flat.thumbnail((size, size), Image.Resampling.BICUBIC)
        rel = os.path.relpath(stem, stamps).replace(os.sep, "_")
        flat.save(os.path.join(out, rel + ".jpg"), quality=92)
        with open(os.path.join(out, rel + ".txt"), "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        counts["written"] += 1
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", required=True, help="the pairs folder to write")
    p.add_argument("--unpacked", help="an unpacked package tree (skips apt-get)")
    p.add_argument("--size", type=int, default=224, help="longest side of the written JPEGs")
    p.add_argument("--limit", type=int, default=0, help="at most this many pairs (0: all)")
    a = p.parse_args(argv)
    if a.unpacked:
        stamps = os.path.join(a.unpacked, STAMPS) if os.path.isdir(os.path.join(a.unpacked, STAMPS)) else a.unpacked
    else:
        stamps = unpack(tempfile.mkdtemp(prefix="tuxpaint_"))
    counts = write_pairs(stamps, a.output, a.size, a.limit)
    print(f"{a.output}: {counts}")
    return 0 if counts["written"] >= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
