"""End to end: `wit ab` on the sample web, filtered vs unfiltered, two seeds, a few steps.

Both arms are curated from the same served web, each trains the tiny model with the same seeds,
and every task (the three held-out scene tasks and a captioned-image folder for retrieval) gets
a score per seed and arm; ab.json, ab.html and the printed table agree. Then the input errors
(one line, exit 2, nothing written).
"""

import json
import os

import pytest
from PIL import Image

from pipeline.cli import main

ARGS = ["ab", "configs/sample.yaml", "configs/sample_unfiltered.yaml", "--seeds", "0", "1",
        "--steps", "3", "--batch-size", "8", "--pages", "6"]


def _pairs(root):
    root.mkdir()
    for i, (colour, text) in enumerate([((255, 0, 0), "a red circle"), ((0, 0, 255), "a blue square"),
                                        ((0, 255, 0), "a green star")]):
        Image.new("RGB", (64, 64), colour).save(root / f"p{i}.jpg")
        (root / f"p{i}.txt").write_text(text + "\n")
    return root


def test_wit_ab_filtered_vs_unfiltered(tmp_path, capsys):
    pairs = _pairs(tmp_path / "pairs")
    out = tmp_path / "ab"
    assert main(ARGS + ["--output", str(out), "--eval", f"pairs:{pairs}"]) == 0
    table = capsys.readouterr().out
    result = json.loads((out / "ab.json").read_text())
    tasks = ["sample_colour_shapes", "sample_shapes", "sample_colours", "pairs"]
    assert [r["task"] for r in result["rows"]] == tasks  # the held-out tasks first, then --eval
    for row in result["rows"]:
        assert len(row["a"]) == len(row["b"]) == 2 and all(0 <= v <= 1 for v in row["a"] + row["b"])
        assert row["p"] is not None  # two seeds: Welch's test ran
    for task in tasks:
        assert any(line.startswith(task) and ("separate" in line or "better" in line)
                   for line in table.splitlines())
    for arm in ("a", "b"):
        stats = json.loads((out / arm / "curated" / "stats.json").read_text())
        assert stats["kept"] > 0 and os.path.isfile(out / arm / "seed1" / "checkpoints" / "final.pt")
    kept_a = json.loads((out / "a" / "curated" / "stats.json").read_text())["kept"]
    kept_b = json.loads((out / "b" / "curated" / "stats.json").read_text())["kept"]
    assert kept_b > kept_a  # the unfiltered arm keeps what the filters drop
    assert f"A {kept_a}, B {kept_b}" in table
    page = (out / "ab.html").read_text()
    assert 'id="ab-table"' in page and "data:image/png;base64," in page


@pytest.mark.parametrize("extra, message", [
    (["--inputs", "nonsense"], "expected KIND:PATH"),
    (["--eval", "folder:x"], "zeroshot:TASK.yaml"),
])
def test_wit_ab_input_errors(tmp_path, capsys, extra, message):
    assert main(ARGS + ["--output", str(tmp_path / "o")] + extra) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_wit_ab_missing_config(tmp_path, capsys):
    assert main(["ab", "nope.yaml", "configs/sample.yaml", "--output", str(tmp_path / "o")]) == 2
    assert "nope.yaml: no such config" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
