"""Guards of SVG rasterisation (issue 16 item 6): with one off, an external reference reaches the
renderer (which reads local files by path), an entity declaration is parsed on, or the renderer is
asked for the declared size instead of the target."""

from tests.mutation.registry import Guard

_T = "tests/transforms/test_svg.py::"


def _declared_size(width, height, spec):
    return max(1, round(width)), max(1, round(height))


GUARDS = [
    Guard("svg_external_references_stripped", "transforms.svg:_strip_references", lambda root: 0,
          (_T + "test_a_local_file_named_by_href_never_reaches_the_output", _T + "test_external_hrefs_are_stripped")),
    Guard("svg_entities_refused", "transforms.svg:_refuse_entities", lambda root: None,
          (_T + "test_entity_declarations_are_refused",)),
    Guard("svg_render_size_capped", "transforms.svg:render_size", _declared_size,
          (_T + "test_render_size_is_the_target_not_the_declared_size",)),
]
