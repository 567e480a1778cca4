from PIL import Image

from pipeline.report.balance_plot import balance_chart
from transforms.balance import distribution


def _section():
    before_counts = [4000 // (r + 1) for r in range(300)]
    after_counts = [min(c, 100) for c in before_counts]
    before, after = distribution(before_counts), distribution(after_counts)
    before["top"] = [[f"entry{r}", c] for r, c in enumerate(before_counts[:20])]
    after["top"] = [[f"entry{r}", c] for r, c in enumerate(after_counts[:20])]
    return {"t": 100, "before": before, "after": after, "top_kept": [[f"entry{r}", 100] for r in range(20)]}


def test_balance_chart_draws_and_is_reproducible(tmp_path):
    path = balance_chart(_section(), str(tmp_path / "b.png"))
    with Image.open(path) as img:
        assert img.format == "PNG" and img.width > 600 and img.height > 250
    again = balance_chart(_section(), str(tmp_path / "b2.png"))
    assert (tmp_path / "b.png").read_bytes() == open(again, "rb").read()


def test_nothing_to_draw_returns_none(tmp_path):
    assert balance_chart(None, str(tmp_path / "b.png")) is None
    assert balance_chart({"t": 5, "before": distribution([]), "after": distribution([])}, str(tmp_path / "b.png")) is None
    assert not list(tmp_path.iterdir())
