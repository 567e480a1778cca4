"""The loopback server: real HTTP on 127.0.0.1, every status the site defines, clean shutdown."""

import concurrent.futures
import threading

import pytest
import requests

from pipeline.sample import SampleServer


@pytest.fixture(scope="module")
def server(site):
    with SampleServer(site) as srv:
        yield srv


@pytest.fixture()
def http():
    session = requests.Session()
    session.trust_env = False  # never route loopback requests through an environment proxy
    yield session
    session.close()


def _get(http, server, path, **kw):
    return http.get(server.url(path), timeout=10, **kw)


def test_base_and_seed_urls(server, site):
    assert server.base_url.startswith("http://127.0.0.1:")
    assert not server.base_url.endswith(":0")
    assert server.seed_urls == [server.base_url + p for p in site.seed_paths]


def test_serves_pages_and_images(http, server, site):
    resp = _get(http, server, "/index.html")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    assert resp.content == site.resources["/index.html"].body
    assert int(resp.headers["Content-Length"]) == len(resp.content)
    resp = _get(http, server, "/img/scene_0001.jpg?size=large")  # query strings are ignored
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "image/jpeg"
    assert resp.content == site.resources["/img/scene_0001.jpg"].body


def test_error_statuses(http, server):
    assert _get(http, server, "/no/such/thing.jpg").status_code == 404
    assert _get(http, server, "/pages/missing.html").status_code == 404
    assert _get(http, server, "/img/gone_0.jpg").status_code == 404
    assert _get(http, server, "/img/error_0.jpg").status_code == 500
    assert _get(http, server, "/img/error_1.jpg").status_code == 502


def test_redirect(http, server, site):
    resp = _get(http, server, "/r/img0.jpg", allow_redirects=False)
    assert resp.status_code == 302
    target = resp.headers["Location"]
    resp = _get(http, server, "/r/img0.jpg")
    assert resp.status_code == 200 and resp.url == server.url(target)
    assert resp.content == site.resources[target].body


def test_noai_header_and_robots(http, server, site):
    resp = _get(http, server, "/img/noai_0.jpg")
    assert resp.status_code == 200 and resp.headers["X-Robots-Tag"] == "noai"
    resp = _get(http, server, "/robots.txt")
    assert resp.status_code == 200 and resp.text == site.robots_txt
    assert "Disallow: /private/" in resp.text


def test_head_has_length_and_no_body(http, server, site):
    resp = http.head(server.url("/img/scene_0002.jpg"), timeout=10)
    assert resp.status_code == 200 and resp.content == b""
    assert int(resp.headers["Content-Length"]) == len(site.resources["/img/scene_0002.jpg"].body)


def test_every_manifest_image_fetches_as_its_kind_says(http, server, site):
    for entry in site.manifest:
        resp = _get(http, server, entry.image_path)
        if entry.kind == "http_404":
            assert 400 <= resp.status_code < 500, entry
        elif entry.kind == "http_500":
            assert 500 <= resp.status_code < 600, entry
        else:
            assert resp.status_code == 200, entry
            if entry.kind == "noai":
                assert "noai" in resp.headers["X-Robots-Tag"] or "noimageai" in resp.headers["X-Robots-Tag"]


def test_many_concurrent_requests(server, site):
    paths = [p for p in site.resources if p.startswith("/img/scene_")][:120]

    def fetch(path):
        with requests.Session() as session:
            session.trust_env = False
            return path, session.get(server.url(path), timeout=10).content

    with concurrent.futures.ThreadPoolExecutor(max_workers=48) as pool:
        results = list(pool.map(fetch, paths * 2))
    assert len(results) == 2 * len(paths)
    assert all(body == site.resources[path].body for path, body in results)


def test_stop_is_clean_and_idempotent(site):
    before = {t.ident for t in threading.enumerate()}
    srv = SampleServer(site)
    with pytest.raises(RuntimeError):
        srv.base_url
    with srv:
        url = srv.url("/index.html")
        with requests.Session() as session:
            session.trust_env = False
            assert session.get(url, timeout=10).status_code == 200
    srv.stop()
    leaked = [t for t in threading.enumerate() if t.ident not in before and t.name.startswith("SampleServer")]
    assert not leaked
    with requests.Session() as session:
        session.trust_env = False
        with pytest.raises(requests.ConnectionError):
            session.get(url, timeout=2)
