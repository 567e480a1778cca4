import pytest

from pipeline.config import ConfigError, load_config, parse_override


def test_base_config_loads_with_documented_keys():
    cfg = load_config()
    assert cfg.crawl.max_depth >= 0 and cfg.crawl.max_pages >= 1
    assert cfg.resize.image_size == 256 and cfg.resize.mode == "border"
    assert cfg.score.enabled is True and cfg.score.model == "ViT-B-32"
    assert cfg.score.pretrained == "laion2b_s34b_b79k" and cfg.score.min_score == pytest.approx(0.28)


def test_overrides_are_typed():
    cfg = load_config([], ["score.min_score=0.3", "score.enabled=false", "resize.image_size=128"])
    assert cfg.score.min_score == pytest.approx(0.3)
    assert cfg.score.enabled is False
    assert cfg.resize.image_size == 128


def test_yaml_files_layer_in_order(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("resize:\n  mode: center_crop\n  image_size: 64\n")
    b = tmp_path / "b.yaml"
    b.write_text("resize:\n  image_size: 96\n")
    cfg = load_config([a, b])
    assert (cfg.resize.mode, cfg.resize.image_size) == ("center_crop", 96)


@pytest.mark.parametrize("override,message", [
    ("score.min_scor=0.3", "unknown key"),
    ("scoring.enabled=true", "unknown config section"),
    ("resize.mode=stretch", "resize.mode"),
    ("resize.resample=nearest", "resize.resample"),
    ("resize.image_size=big", "expected an integer"),
    ("score.enabled=maybe", "expected true/false"),
    ("score", "key.sub=value"),
])
def test_bad_config_fails_before_running(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config([], [override])


def test_unknown_key_in_yaml(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("crawl:\n  max_dept: 2\n")
    with pytest.raises(ConfigError, match="max_dept"):
        load_config([bad])


def test_parse_override_parses_yaml_values():
    assert parse_override("caption.placeholders=[logo, icon]") == ("caption", "placeholders", ["logo", "icon"])


def test_config_hash_changes_with_values():
    assert load_config().config_hash() != load_config([], ["score.min_score=0.1"]).config_hash()


# -- dedupe / score knobs of issue 5 ---------------------------------------------------

@pytest.mark.parametrize("override, message", [
    ("dedupe.near_policy=random", "dedupe.near_policy must be one of"),
    ("score.keep_fraction=1.5", "score.keep_fraction must be in"),
    ("dedupe.near_threshold=40", "dedupe.near_threshold"),
    ("dedupe.near_bands=1", "dedupe.near_bands"),
    ("score.precision=fp8", "score.precision"),
    ("dedupe.semantic_eps=0", "dedupe.semantic_eps"),
])
def test_issue5_knobs_are_validated(override, message):
    from pipeline.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=message):
        load_config([], [override])


def test_scores_needed_by_best_clip_score_and_semantic():
    from pipeline.config import ConfigError, load_config

    for override in ("dedupe.near_policy=best_clip_score", "dedupe.semantic=true"):
        with pytest.raises(ConfigError, match="needs score.enabled"):
            load_config([], ["score.enabled=false", override])
    cfg = load_config([], ["score.keep_fraction=0.3", "dedupe.near_policy=best_caption"])
    assert cfg.score.keep_fraction == 0.3 and cfg.dedupe.near and not cfg.dedupe.semantic
