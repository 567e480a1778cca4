"""trainer.eval_tasks: zero-shot task YAMLs (the shipped ones too), image folders, results."""

from pathlib import Path

import pytest
from PIL import Image

from tests.trainer.conftest import REPO
from tests.trainer.test_evaluate import RGB, ColourModel, preprocess, tokenizer
from trainer.eval_tasks import ZeroShotTask, image_folder, load_pairs, load_task, run_pair_retrieval, run_zero_shot


def _folder(root: Path, layout: dict[str, list[str]]) -> Path:
    for cls, colours in layout.items():
        (root / cls).mkdir(parents=True)
        for i, colour in enumerate(colours):
            Image.new("RGB", (8, 8), RGB[colour]).save(root / cls / f"{i}.png")
    return root


@pytest.mark.parametrize("name, n_classes", [("sample_shapes", 5), ("sample_colours", 8),
                                             ("sample_colour_shapes", 40)])
def test_shipped_tasks_load(name, n_classes):
    task = load_task(str(REPO / "configs" / "eval" / f"{name}.yaml"))
    assert task.name == name and len(task.classes) == n_classes and task.templates
    assert task.images == ""


def test_task_yaml_errors_and_relative_images(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("classes: [a, b]\ntemplates: ['{}']\nimages: imgs\n")
    task = load_task(str(path))
    assert task == ZeroShotTask("t", ("a", "b"), ("{}",), str(tmp_path / "imgs"))
    for text, match in (("classes: [a]\n", "at least 2"), ("classes: [a, b]\nlabels: 1\n",
                                                          "unknown key"),
                        ("classes: [a, b]\ntemplates: ['photo']\n", "must contain")):
        path.write_text(text)
        with pytest.raises(ValueError, match=match):
            load_task(str(path))


def test_zero_shot_on_an_image_folder_with_known_answers(tmp_path):
    root = _folder(tmp_path / "imgs", {"red": ["red", "red"], "green": ["green", "blue"],
                                       "light_blue": ["blue"]})
    (root / "red" / "broken.jpg").write_bytes(b"not an image")
    (root / "red" / "notes.txt").write_text("ignored")
    classes = ("red", "green", "light blue")  # "light blue" found as light_blue/
    assert [label for _, label in image_folder(str(root), classes)] == [0, 0, 0, 1, 1, 2]

    # ColourModel's tokenizer reads the colour word; "light blue" -> blue
    task = ZeroShotTask("colours", classes, ("a {} square", "{}"))
    result = run_zero_shot(ColourModel(), tokenizer, preprocess, task, images_dir=str(root))
    assert result["images"] == 5 and result["skipped_images"] == 1 and result["classes"] == 3
    assert result["top1"] == pytest.approx(4 / 5)  # the blue image filed under green misses
    assert result["per_class_top1"] == {"red": 1.0, "green": 0.5, "light blue": 1.0}
    assert "top5" not in result  # 3 classes only


def test_missing_images(tmp_path):
    task = ZeroShotTask("t", ("red", "green"), ("{}",))
    with pytest.raises(ValueError, match="no images folder"):
        run_zero_shot(ColourModel(), tokenizer, preprocess, task)
    with pytest.raises(FileNotFoundError):
        image_folder(str(tmp_path / "nope"), task.classes)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        image_folder(str(tmp_path / "empty"), task.classes)


def _pairs(root: Path, items: list[tuple[str, str, str]]) -> Path:
    """``(stem, image colour, caption)`` -> ROOT/stem.png beside ROOT/stem.txt."""
    root.mkdir(parents=True)
    for stem, colour, caption in items:
        Image.new("RGB", (8, 8), RGB[colour]).save(root / f"{stem}.png")
        if caption is not None:
            (root / f"{stem}.txt").write_text(caption + "\nde.utf8=ignored\n", encoding="utf-8")
    return root


def test_pair_retrieval_with_known_answers(tmp_path):
    root = _pairs(tmp_path / "pairs", [("a", "red", "a red stamp"), ("b", "green", "a green stamp"),
                                       ("c", "red", "a green stamp, wrongly"), ("d", "blue", "")])
    (root / "e.png").write_bytes(b"not an image")
    (root / "e.txt").write_text("a broken one")
    (root / "f.png").write_bytes(Image.new("RGB", (8, 8)).tobytes()[:10])  # no caption file either
    paths, captions, skipped = load_pairs(str(root))
    assert [Path(p).name for p in paths] == ["a.png", "b.png", "c.png", "e.png"]
    assert captions[0] == "a red stamp" and skipped == 2  # d: empty caption, f: no .txt

    result = run_pair_retrieval(ColourModel(), tokenizer, preprocess, str(root))
    assert result["pairs"] == 3 and result["skipped_images"] == 3  # + e: does not decode
    # image->text: a (red) finds its caption; b (green) its own, tied with c's "green" caption
    # (ties count as hits); c is red but captioned green: a's caption scores strictly higher.
    # text->image: "a red stamp" ties a and c (hit); b's finds b; c's "green" finds b, not c
    assert result["image_to_text_r1"] == pytest.approx(2 / 3)
    assert result["text_to_image_r1"] == pytest.approx(2 / 3)


def test_pair_retrieval_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_pairs(str(tmp_path / "nope"))
    _pairs(tmp_path / "none", [("a", "red", None)])
    with pytest.raises(ValueError, match="no captioned images"):
        load_pairs(str(tmp_path / "none"))
    _pairs(tmp_path / "one", [("a", "red", "a red one")])
    with pytest.raises(ValueError, match="at least 2"):
        run_pair_retrieval(ColourModel(), tokenizer, preprocess, str(tmp_path / "one"))
