"""Guards of the one URL canonicaliser (transforms/url_canonical.py, issue 17 item 1).

With a guard off, two spellings of one image URL get two dedupe keys and a listed URL's
variant slips past the blocklist (userinfo kept), or the regex shortcut returns a URL the full
path would rewrite (a lower-case or unreserved percent triplet kept), so the key of a URL would
depend on which path it took.
"""

import re
from urllib.parse import urlsplit

from tests.mutation.registry import Guard
from transforms import url_canonical

_U = "tests/transforms/test_url_canonical.py::"
_B = "tests/filters/test_blocklist_lists.py::"
_real_slow = url_canonical._canonical_slow


def _keeps_userinfo(url: str) -> str:
    out = _real_slow(url)
    try:
        userinfo = urlsplit(url).netloc.rpartition("@")[0]
    except ValueError:
        return out
    return out.replace("://", f"://{userinfo}@", 1) if userinfo and "://" in out else out


GUARDS = [
    Guard("url_userinfo_dropped", "transforms.url_canonical:_canonical_slow", _keeps_userinfo,
          (_U + "test_variants_of_one_url_are_equal",
           _B + "test_listed_url_matches_the_crawl_and_dedupe_form_of_its_variants")),
    Guard("url_shortcut_checks_triplets", "transforms.url_canonical:_BAD_TRIPLET", re.compile(r"(?!)"),
          (_U + "test_canonical_url", _U + "test_variants_of_one_url_are_equal",
           _U + "test_never_raises_is_idempotent_and_the_shortcut_agrees")),
]
