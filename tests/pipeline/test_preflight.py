"""pipeline/preflight.py: a wrong input, scheme or runner is one line, exit 2, and nothing written."""

import os

import pytest

from pipeline import cli, preflight
from pipeline.config import config_path


def _curate(tmp_path, capsys, *args):
    out = tmp_path / "out"
    code = cli.main(["curate", "--output", str(out), *args])
    err = capsys.readouterr().err.strip()
    return code, err, out


def _one_line_usage_error(code, err, out, *needles):
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("wit: error: ")
    for needle in needles:
        assert needle in err, err
    assert not out.exists(), "an output directory was created for a run that never started"


def test_missing_seeds_file(tmp_path, capsys):
    code, err, out = _curate(tmp_path, capsys, "--seeds", str(tmp_path / "missing.txt"))
    _one_line_usage_error(code, err, out, "--seeds", "missing.txt", "no such file")


def test_seeds_that_is_a_directory(tmp_path, capsys):
    code, err, out = _curate(tmp_path, capsys, "--seeds", str(tmp_path))
    _one_line_usage_error(code, err, out, "is a directory")


def test_s3_url_list_without_the_aws_extra_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(preflight.SCHEME_MODULES, "s3", "wit_no_such_module_boto3")
    code, err, out = _curate(tmp_path, capsys, "--url-list", "s3://bucket/pool.parquet")
    _one_line_usage_error(code, err, out, "s3://", "apache-beam[aws]")


def test_unknown_scheme(tmp_path, capsys):
    code, err, out = _curate(tmp_path, capsys, "--url-list", "nosuch://bucket/pool.parquet")
    _one_line_usage_error(code, err, out, "nosuch://")


def test_unknown_scheme_for_the_output(tmp_path, capsys):
    listed = tmp_path / "pool.csv"
    listed.write_text("url,caption\nhttp://127.0.0.1:9/a.jpg,a photo of a cat\n")
    code = cli.main(["curate", "--output", "nosuch://b/out", "--url-list", str(listed)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--output nosuch://b/out" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("runner, needle", [("DaskRunner", "drops outputs"), ("NoSuchRunner", "Unexpected pipeline runner")])
def test_a_runner_that_drops_data_or_does_not_exist_fails_before_the_scorer_loads(tmp_path, capsys, monkeypatch,
                                                                                  runner, needle):
    import pipeline.run as run

    monkeypatch.setattr(run, "check_scorer", lambda cfg: pytest.fail("the scorer loaded before the runner check"))
    listed = tmp_path / "pool.csv"
    listed.write_text("url,caption\nhttp://127.0.0.1:9/a.jpg,a photo of a cat\n")
    code, err, out = _curate(tmp_path, capsys, "--url-list", str(listed), "--runner", runner)
    _one_line_usage_error(code, err, out, f"--runner {runner}", needle)


def test_relative_config_resolves_from_the_cwd_then_the_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config_path("configs/sample.yaml").is_file()  # not in tmp_path: the project's
    assert config_path("sample.yaml").is_file()  # under configs/
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "sample.yaml").write_text("score:\n  enabled: false\n")
    assert os.path.samefile(config_path("configs/sample.yaml"), tmp_path / "configs" / "sample.yaml")  # the CWD's wins
    assert not config_path("nowhere.yaml").exists()


def test_a_config_from_another_directory_loads(tmp_path, monkeypatch):
    from pipeline.config import load_config

    monkeypatch.chdir(tmp_path)
    cfg = load_config(["configs/sample.yaml"])
    assert cfg.score.enabled is not None
