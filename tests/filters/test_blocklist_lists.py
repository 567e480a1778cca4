"""filters.blocklist_lists: file format, normalisation, and a clear error for every bad entry."""

import gzip

import pytest

from filters.blocklist_lists import BlocklistError, canonical_url, load_blocklists, normalise_host
from pipeline.specs import blocklist_spec
from tests.default_specs import spec_with


def _write(tmp_path, name, text):
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def test_domains_comments_wildcards_urls_and_idna(tmp_path):
    path = _write(tmp_path, "domains.txt", "# takedowns\n\nExample.COM.\n*.bad.org  # note\n.dot.net\n"
                  "https://www.From-Url.io/some/path\nbücher.de\n")
    lists = load_blocklists(spec_with(blocklist_spec, domains=[path]))
    assert lists.domains == {"example.com", "bad.org", "dot.net", "www.from-url.io", "xn--bcher-kva.de"}


def test_gzipped_list_is_read(tmp_path):
    path = _write(tmp_path, "domains.txt.gz", "gz.example\n")
    assert load_blocklists(spec_with(blocklist_spec, domains=[path])).domains == {"gz.example"}


def test_urls_and_prefixes_are_canonical(tmp_path):
    urls = _write(tmp_path, "urls.txt", "HTTPS://Img.Example.com:443/a.jpg#frag\n")
    prefixes = _write(tmp_path, "prefixes.txt", "http://cdn.example.com/takedown/\nhttp://cdn.example.com:8080/x\n")
    lists = load_blocklists(spec_with(blocklist_spec, url_prefixes=[prefixes], urls=[urls]))
    assert lists.urls == {"https://img.example.com/a.jpg"}
    assert lists.prefixes_by_host == {"cdn.example.com": ("http://cdn.example.com/takedown/",
                                                          "http://cdn.example.com:8080/x")}


def test_hash_lists_accept_sha256sum_output_and_upper_case(tmp_path):
    digest = "AB" * 32
    sha = _write(tmp_path, "sha.txt", f"{digest}  takedown.jpg\n")
    phash = _write(tmp_path, "phash.txt", "00000000000000FF\n00000000000000ff\n")
    lists = load_blocklists(spec_with(blocklist_spec, sha256=[sha], phash=[phash], phash_radius=6))
    assert lists.sha256 == {digest.lower()}
    assert lists.phashes == (0xFF,) and lists.phash_radius == 6
    assert lists.sizes() == {"domains": 0, "url_prefixes": 0, "urls": 0, "sha256": 1, "phash": 1}


@pytest.mark.parametrize("kind, text", [
    ("domains", "bad!domain.com\n"),
    ("domains", "exa_mple..com\n"),
    ("urls", "ftp://example.com/a.jpg\n"),
    ("urls", "/relative/path.jpg\n"),
    ("url_prefixes", "http://host:99999/x\n"),
    ("sha256", "abc123\n"),
    ("phash", "xyz0000000000000\n"),
    ("phash", "0123\n"),
])
def test_bad_entry_names_file_and_line(tmp_path, kind, text):
    path = _write(tmp_path, "list.txt", "# header\n" + text)
    with pytest.raises(BlocklistError, match=r"list\.txt:2: .* not a valid"):
        load_blocklists(spec_with(blocklist_spec, **{kind: [path]}))


def test_missing_or_binary_file_is_a_clear_error(tmp_path):
    with pytest.raises(BlocklistError, match="cannot read blocklist"):
        load_blocklists(spec_with(blocklist_spec, domains=[str(tmp_path / "nope.txt")]))
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(BlocklistError, match="not UTF-8"):
        load_blocklists(spec_with(blocklist_spec, sha256=[str(binary)]))


def test_radius_out_of_range():
    with pytest.raises(BlocklistError, match="phash_radius"):
        load_blocklists(spec_with(blocklist_spec, phash_radius=40))


@pytest.mark.parametrize("url, expected", [
    ("http://EXAMPLE.com", "http://example.com/"),
    ("https://example.com:443/a?b=1#c", "https://example.com/a?b=1"),
    ("http://example.com:8080/a", "http://example.com:8080/a"),
    ("http://[::1]:80/a", "http://[::1]/a"),
    ("mailto:x@example.com", ""),
    ("http://bad:port/", ""),
    ("http://u:p@Bücher.DE./a/../b%7e%2f.jpg", "http://xn--bcher-kva.de/b~%2F.jpg"),  # userinfo, IDNA, dots, %
])
def test_canonical_url(url, expected):
    assert canonical_url(url) == expected


def test_listed_url_matches_the_crawl_and_dedupe_form_of_its_variants(tmp_path):
    from transforms.crawl import normalize_url  # the crawl's links and the URL-dedupe key

    listed = "https://bücher.example/takedown/ä.jpg"
    variants = ["HTTPS://user:pw@B\u00fcCHER.example:443/x/../takedown/%C3%A4.jpg#f",
                "https://xn--bcher-kva.example/./takedown/%c3%a4.jpg", "https://bücher.example./takedown/ä.jpg"]
    lists = load_blocklists(spec_with(blocklist_spec, urls=[_write(tmp_path, "urls.txt", listed + "\n")]))
    for variant in variants:
        assert canonical_url(variant) in lists.urls
        assert canonical_url(variant) == normalize_url(variant)


def test_normalise_host():
    assert normalise_host("WWW.Example.COM.") == "www.example.com"
    assert normalise_host("1.2.3.4") == "1.2.3.4"
    assert normalise_host("sp ace.com") == ""
