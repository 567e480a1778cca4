"""pipeline/runners.py: options and runner choice."""

from pipeline.runners import make_options


def test_options_views_are_built_once_and_share_their_values():
    from apache_beam.options.pipeline_options import SetupOptions, StandardOptions

    options = make_options(["--runner=DirectRunner"])
    assert options.view_as(StandardOptions) is options.view_as(StandardOptions)
    assert options.view_as(SetupOptions).save_main_session is False
    options.view_as(StandardOptions).runner = "Other"
    assert options.get_all_options()["runner"] == "Other"
    assert options.view_as(StandardOptions).view_as(StandardOptions).runner == "Other"
