"""pipeline/ab_report.py: Welch's test decides "separated"; the table and the HTML say so."""

import pytest

from pipeline.ab_report import compare, format_table, welch_p, write_html

NAMES = ("filtered", "unfiltered")


def test_welch_matches_scipy_and_the_edge_cases():
    from scipy import stats

    a, b = [0.61, 0.64, 0.66], [0.40, 0.47, 0.43]
    assert welch_p(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert welch_p([0.5], [0.4, 0.3]) is None  # one seed: nothing to say
    assert welch_p([0.5, 0.5], [0.5, 0.5]) == 1.0  # identical, deterministic
    assert welch_p([0.6, 0.6], [0.5, 0.5]) == 0.0  # different, deterministic


def test_compare_separates_only_clear_gaps():
    clear = compare("shapes", [0.61, 0.64, 0.66], [0.40, 0.47, 0.43])
    assert clear["separated"] and clear["gap"] == pytest.approx(0.2033, abs=1e-3)
    assert clear["mean_a"] == pytest.approx(0.6367, abs=1e-3) and clear["sd_b"] > 0
    noisy = compare("colours", [0.50, 0.70, 0.30], [0.45, 0.40, 0.55])
    assert not noisy["separated"] and noisy["p"] > 0.05  # a gap of the means, but not of the seeds
    assert not compare("one", [0.9], [0.1])["separated"]  # one seed never separates


def test_table_says_when_the_seeds_do_not_separate():
    rows = [compare("shapes", [0.61, 0.64, 0.66], [0.40, 0.47, 0.43]),
            compare("colours", [0.50, 0.70, 0.30], [0.45, 0.40, 0.55]),
            compare("single", [0.9], [0.1])]
    text = format_table(rows, NAMES, [0, 1, 2]).splitlines()
    assert "63.7 ± 2.5" in text[1] and "+20.3" in text[1] and "filtered better" in text[1]
    assert "seeds do not separate the arms" in text[2]
    assert "cannot tell" in text[3]


def test_html_is_one_file_with_table_and_plot_and_is_deterministic(tmp_path):
    rows = [compare("shapes", [0.61, 0.64, 0.66], [0.40, 0.47, 0.43]),
            compare("colours", [0.50, 0.70, 0.30], [0.45, 0.40, 0.55])]
    first = write_html(str(tmp_path / "a.html"), rows, NAMES, {"A": "sample.yaml", "B": "x <y>"})
    second = write_html(str(tmp_path / "b.html"), rows, NAMES, {"A": "sample.yaml", "B": "x <y>"})
    page = open(first, encoding="utf-8").read()
    assert page == open(second, encoding="utf-8").read()
    assert 'id="ab-table"' in page and "data:image/png;base64," in page and "x &lt;y&gt;" in page
    assert page.count("<tr><td>") == 2 and "seeds do not separate the arms" in page
