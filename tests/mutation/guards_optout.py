"""Guards of the page-level opt-outs and the licence allow-list (transforms/page_opt_out.py,
transforms/license.py, filters/license_rules.py): each entry's tests fail with it off."""

from tests.mutation.registry import Guard

_EXTRACT = "tests/transforms/test_extract_alt_text.py"
_LICENSE_RULES = "tests/filters/test_license_rules.py"

GUARDS = [
    Guard("page_noai_meta", "transforms.page_opt_out:noai_directives", lambda *a, **k: set(),
          (f"{_EXTRACT}::test_page_opt_out_metas", f"{_EXTRACT}::test_opt_out_meta_in_the_body_counts_too",
           f"{_LICENSE_RULES}::test_extract_then_license_rules_pipeline")),
    Guard("page_tdm_reservation_meta", "transforms.page_opt_out:tdm_reservation", lambda *a, **k: False,
          (f"{_EXTRACT}::test_page_opt_out_metas", f"{_EXTRACT}::test_page_opt_out_details")),
    Guard("license_allow", "filters.license_rules:license_allowed", lambda *a, **k: True,
          (f"{_LICENSE_RULES}::test_license_rule", f"{_LICENSE_RULES}::test_extract_then_license_rules_pipeline")),
    Guard("license_jsonld_size_cap", "transforms.license:jsonld_fits", lambda *a, **k: True,
          ("tests/transforms/test_license.py::test_hostile_pages_are_bounded_and_never_raise",)),
]
