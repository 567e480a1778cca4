from PIL import Image

from pipeline.report import plots


def _is_png(path):
    with Image.open(path) as img:
        return img.format == "PNG" and img.width > 300 and img.height > 150


def test_every_chart_draws_and_is_reproducible(tmp_path):
    funnel = [{"stage": "CaptionRules", "in": 10, "out": 8, "dropped": {"caption.empty": 2}},
              {"stage": "ClipThreshold", "in": 8, "out": 6, "dropped": {"clip.below_threshold": 2}}]
    made = [
        plots.funnel_chart(funnel, str(tmp_path / "f.png")),
        plots.score_histogram([0.6, 0.7, 0.9], [0.1, 0.2], 0.5, str(tmp_path / "s.png")),
        plots.caption_length_chart([3, 5, 8], [0, 1, 90], str(tmp_path / "c.png")),
        plots.image_size_chart([(200, 300), (256, 256)], [(16, 16), (600, 60)], 32, 3.0, str(tmp_path / "i.png")),
    ]
    assert all(_is_png(p) for p in made)
    again = plots.score_histogram([0.6, 0.7, 0.9], [0.1, 0.2], 0.5, str(tmp_path / "s2.png"))
    assert (tmp_path / "s.png").read_bytes() == open(again, "rb").read()


def test_nothing_to_draw_returns_none(tmp_path):
    assert plots.funnel_chart([], str(tmp_path / "f.png")) is None
    assert plots.score_histogram([], [], 0.3, str(tmp_path / "s.png")) is None
    assert plots.caption_length_chart([], [], str(tmp_path / "c.png")) is None
    assert plots.image_size_chart([], [], None, None, str(tmp_path / "i.png")) is None
    assert not list(tmp_path.iterdir())
