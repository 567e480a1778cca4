"""pipeline/cli.py help texts: every option says what it does and its default; curate --help teaches."""

import argparse
import re

from pipeline.cli import build_parser


def _parsers(parser, path=("wit",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


def test_every_option_of_every_command_has_a_help_line_and_shows_its_default():
    missing, no_default = [], []
    for path, parser in _parsers(build_parser()):
        text = parser.format_help()
        assert "``" not in text and "`" not in text, f"{' '.join(path)}: reST/markdown backticks in --help"
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            name = "/".join(action.option_strings) or action.dest
            if not action.help:
                missing.append(f"{' '.join(path)} {name}")
                continue
            default = action.default
            if action.option_strings and not (default is None or default is False or default == []):
                shown = parser._get_formatter()._get_help_string(action) % {"default": default}
                if "default" not in shown.lower():
                    no_default.append(f"{' '.join(path)} {name}")
    assert not missing, f"options without help: {missing}"
    assert not no_default, f"options whose default --help does not show: {no_default}"


def test_curate_help_gives_an_example_per_input_kind_and_says_beam_flags_pass_through():
    curate = dict(_parsers(build_parser()))[("wit", "curate")]
    text = curate.format_help()
    for flag in ("--seeds", "--url-list", "--warc"):
        assert re.search(rf"wit curate {flag} \S+ .*--output", text), f"no example for {flag}"
    assert "At least one input is required" in text
    assert "passes through" in text and "--direct_num_workers" in text and "DataflowRunner" in text
    assert "exit codes" in text


def test_a_default_of_zero_is_shown():
    serve = dict(_parsers(build_parser()))[("wit", "sample", "serve")]
    assert "(default: 0)" in serve.format_help()
