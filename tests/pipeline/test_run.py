"""run.py's output preparation: what --overwrite, --resume and a plain run do to an existing output."""

import pytest

from pipeline.run import OutputExists, prepare_output, present, remove


def _old_run(out, finished=True):
    (out / "shards").mkdir(parents=True)
    (out / "shards" / "00000.tar").write_bytes(b"t")
    (out / "_work" / "fetched").mkdir(parents=True)
    (out / "_work" / "fetched" / "ok-1.pkl").write_bytes(b"p")
    if finished:
        (out / "stats.json").write_text("{}")


def test_present_and_remove_files_and_directories(tmp_path):
    _old_run(tmp_path)
    assert present(str(tmp_path / "_work")) and present(str(tmp_path / "stats.json"))
    assert not present(str(tmp_path / "rejections"))
    remove(str(tmp_path / "_work"))
    remove(str(tmp_path / "stats.json"), directory=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]


def test_unfinished_output_is_refused_with_a_resume_hint(tmp_path):
    _old_run(tmp_path, finished=False)
    with pytest.raises(OutputExists, match="--resume continues it"):
        prepare_output(str(tmp_path), overwrite=False)


def test_resume_keeps_saved_work_and_clears_final_files(tmp_path):
    _old_run(tmp_path)
    prepare_output(str(tmp_path), overwrite=False, resume=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_work"]
    assert (tmp_path / "_work" / "fetched" / "ok-1.pkl").exists()


def test_overwrite_clears_everything(tmp_path):
    _old_run(tmp_path)
    prepare_output(str(tmp_path), overwrite=True)
    assert list(tmp_path.iterdir()) == []
