"""The SSRF guard (transforms/ssrf.py): the address policy, the connect-time check, the peer check.

No traffic leaves loopback: every test runs with connects to non-loopback
addresses refused (hostile_server.forbid_off_loopback), DNS answers for the
``*.test`` names come from a fake resolver, and the "public" answer of the
rebinding test is only ever looked up, never connected to.
"""

import socket
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.specs import client_settings
from tests.default_specs import spec_with
from tests.transforms.hostile_server import CountingListener, HostileServer, forbid_off_loopback
from transforms import http_client, ssrf
from transforms.http_client import HttpClient, _Failure, _join_location

PUBLIC = "93.184.215.14"  # a globally routable address; answered by the fake resolver, never connected to


@pytest.fixture(autouse=True)
def off_loopback_connects(monkeypatch):
    return forbid_off_loopback(monkeypatch)


def _client(**kw) -> HttpClient:
    base = dict(connect_timeout_s=1.0, read_timeout_s=0.5, total_timeout_s=2.0, retries=0, respect_robots=False,
                respect_tdmrep=False, user_agent="wit-curator-test")
    base.update(kw)
    return HttpClient(spec_with(client_settings, **base))


# -- the address policy -------------------------------------------------------------------

REFUSED = [
    # IPv4: loopback, private, shared, link-local, this-network, special purpose
    "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
    "100.64.0.1", "100.100.100.200", "100.127.255.255", "169.254.169.254", "169.254.0.1", "0.0.0.0",
    "0.1.2.3", "192.0.0.9", "192.0.0.170", "192.0.2.1", "192.88.99.1", "198.18.0.1", "198.19.255.255",
    "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    # IPv6: loopback, unspecified, link-local, site-local, ULA, multicast, documentation, discard, SRv6
    "::1", "::", "fe80::1", "fe80::1%lo", "febf::1", "fec0::1", "feff::1", "fc00::1", "fd00:ec2::254",
    "ff02::1", "ff0e::1", "2001:db8::1", "3fff::1", "100::1", "5f00::1", "2001:2::1", "2001:10::1",
    # IPv4 inside IPv6
    "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::ffff:100.64.0.1",
    "::127.0.0.1", "::8.8.8.8", "::ffff:0:8.8.8.8", "::ffff:0:127.0.0.1",
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b::a00:1", "64:ff9b::6440:1",
    "64:ff9b:1::808:808", "64:ff9b:1::a00:1",
    "2002:7f00:1::1", "2002:a00:1::", "2002:c0a8:101::1", "2002:a9fe:a9fe::1", "2002:6440:1::",
    "2001:0:808:808:0:0:80ff:fffe",  # Teredo, client 127.0.0.1 (obfuscated)
    "2001:0:a00:1:0:0:f7f7:fbfb",  # Teredo, server 10.0.0.1
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo, client 192.0.2.45 (documentation)
    # not addresses at all
    "", "localhost", "127.1", "2130706433", "0x7f.1", "[::1]", "1.2.3.4 ", "::ffff:127.0.0.1/128", "fe80::%",
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "100.63.255.255", "100.128.0.1", "172.32.0.1", "192.0.3.1",
           "2606:4700::1111", "2001:4860:4860::8888", "2620:4f:8000::1", "::ffff:8.8.8.8", "64:ff9b::808:808",
           "2002:808:808::1", "2001:0:808:808:0:0:f7f7:fbfb"]  # Teredo: server 8.8.8.8, client 8.8.4.4


@pytest.mark.parametrize("address", REFUSED)
def test_refused_addresses(address):
    assert ssrf.refusal(address) and ssrf.is_blocked_address(address)


@pytest.mark.parametrize("address", ALLOWED)
def test_globally_routable_addresses_are_allowed(address):
    assert ssrf.refusal(address) is None


def test_embedded_forms_say_what_they_carry():
    assert ssrf.refusal("2002:7f00:1::1") == "6to4 of 127.0.0.1: loopback"
    assert ssrf.refusal("64:ff9b::a9fe:a9fe") == "NAT64 of 169.254.169.254: link-local"
    assert ssrf.refusal("::ffff:100.64.0.1") == "IPv4-mapped of 100.64.0.1: shared address space"
    assert ssrf.refusal("2001:0:808:808:0:0:80ff:fffe") == "Teredo of 127.0.0.1: loopback"


# Numeric spellings of loopback that the system resolver (inet_aton) reads as 127.0.0.1, no DNS asked.
NUMERIC_LOOPBACK = ["2130706433", "0x7f.1", "0x7f000001", "0177.0.0.1", "127.1", "017700000001",
                    "127.000.000.001", "localhost", "LOCALHOST", "0", "0.0.0.0"]


@pytest.mark.parametrize("host", NUMERIC_LOOPBACK)
def test_numeric_spellings_are_refused_through_getaddrinfo(host):
    with CountingListener() as listener:
        with pytest.raises(ssrf.AddressRefused):
            ssrf.open_connection(host, listener.port, 1.0)
        result = _client().get(f"http://{host}:{listener.port}/x.jpg")
        assert (result.failure, listener.settle(0.1)) == ("private_address", (0, 0)), result.detail


def test_exempt_and_allow_private_still_connect():
    with CountingListener() as listener:
        for policy in (ssrf.AddressPolicy.of(False, (f"127.0.0.1:{listener.port}",)),
                       ssrf.AddressPolicy.of(True, ())):
            ssrf.open_connection("127.0.0.1", listener.port, 1.0, policy=policy).close()
        with pytest.raises(ssrf.AddressRefused):  # another port of the same host is not exempt
            ssrf.open_connection("127.0.0.1", listener.port, 1.0,
                                 policy=ssrf.AddressPolicy.of(False, (f"127.0.0.1:{listener.port + 1}",)))
        assert listener.settle(0.1)[0] == 2


# -- DNS rebinding: the address checked is the address connected to ----------------------

def _fake_resolver(answers: dict):
    """getaddrinfo for ``*.test`` names from ``answers`` (name -> list of replies, one per lookup,
    the last repeated; a missing name fails as NXDOMAIN); every other name resolves for real."""
    real, lookups = socket.getaddrinfo, []

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if not (isinstance(host, str) and host.endswith(".test")):
            return real(host, port, family, type, proto, flags)
        lookups.append(host)
        replies = answers.get(host)
        if not replies:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        address = replies[min(lookups.count(host), len(replies)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port or 0))]

    return getaddrinfo, lookups


def test_dns_rebinding_never_reaches_loopback(monkeypatch, off_loopback_connects):
    """First answer public (the pre-check), every later one 127.0.0.1 (the connection's own lookup)."""
    resolver, lookups = _fake_resolver({"rebind.test": [PUBLIC, "127.0.0.1"]})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with CountingListener() as listener:
        result = _client().get(f"http://rebind.test:{listener.port}/x.jpg")
        assert result.failure == "private_address" and "127.0.0.1" in result.detail, result.detail
        assert listener.settle() == (0, 0)  # no connection made at all
    assert len(lookups) >= 2 and off_loopback_connects == []  # the public answer was never tried


def test_the_connected_peer_is_checked_before_a_byte_is_sent(monkeypatch, off_loopback_connects):
    """With the lookup's check failing open, the peer check still sends nothing to loopback."""
    resolver, _lookups = _fake_resolver({"rebind.test": [PUBLIC, "127.0.0.1"]})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setattr(ssrf, "check_resolved", lambda *a, **k: None)
    with CountingListener() as listener:
        result = _client().get(f"http://rebind.test:{listener.port}/x.jpg")
        assert result.failure == "private_address" and "connected to 127.0.0.1" in result.detail, result.detail
        assert listener.settle()[1] == 0  # connected (the first line was off), not a byte sent


def test_a_name_with_any_refused_address_is_refused(monkeypatch):
    real = socket.getaddrinfo

    def two_answers(host, port, *a, **k):
        if host != "mixed.test":
            return real(host, port, *a, **k)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, port or 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", two_answers)
    with pytest.raises(ssrf.AddressRefused, match="127.0.0.1"):
        ssrf.open_connection("mixed.test", 80, 1.0)


# -- through an environment proxy: the target's resolution, best effort -------------------

@pytest.fixture
def via_proxy(monkeypatch):
    """The hostile server as the environment's HTTP proxy; ``*.test`` names unknown to the worker."""
    resolver, _lookups = _fake_resolver({"private.test": ["10.0.0.1"]})
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with HostileServer() as proxy:
        for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        for name in ("http_proxy", "HTTP_PROXY"):
            monkeypatch.setenv(name, proxy.base_url)
        yield proxy


def test_behind_a_proxy_every_hop_target_is_still_checked(via_proxy):
    client = _client()
    assert client.get("http://site.test/ok.jpg").ok  # a name only the proxy resolves: left to it
    assert client.get("http://site.test/to-private").failure == "private_address"  # hop 2 is 10.0.0.1
    assert client.get("http://site.test/to-localhost").failure == "private_address"
    assert client.get("http://private.test/ok.jpg").failure == "private_address"  # resolves to 10.0.0.1 here
    assert client.get("http://[::ffff:127.0.0.1]/ok.jpg").failure == "private_address"
    assert via_proxy.hits.get("/x.jpg") is None and via_proxy.hits["/ok.jpg"] == 1


# -- redirects whose Location does not parse ------------------------------------------------

@pytest.mark.parametrize("location", ["http://[::1", "http://[oops/", "//[::1/x", "http://h:99999/",
                                      "http://h:-1/", "http://h:８０/"])
def test_an_unparseable_location_is_bad_url(location):
    with pytest.raises(_Failure) as failure:
        _join_location("http://site.test/a", location)
    assert failure.value.kind == http_client.BAD_URL


# -- fuzz: nothing here raises but a failure kind -----------------------------------------

def _numeric_only(real=socket.getaddrinfo):
    """The real resolver, numeric hosts only: input checks as usual, no DNS query ever sent."""
    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        return real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)
    return getaddrinfo


_HOSTISH = st.one_of(st.text(max_size=60), st.from_regex(r"[0-9a-fA-FxX.:%\[\]]{0,40}", fullmatch=True),
                     st.ip_addresses().map(str))


@pytest.mark.fuzz
@given(st.one_of(_HOSTISH, st.binary(max_size=40), st.integers(), st.none()))
def test_the_policy_never_raises(address):
    assert ssrf.refusal(address) is None or isinstance(ssrf.refusal(address), str)
    assert isinstance(ssrf.is_blocked_address(address), bool)


@pytest.mark.fuzz
@given(_HOSTISH, st.integers(0, 70000))
def test_the_connect_time_check_raises_only_connection_errors(host, port):
    with mock.patch.object(socket, "getaddrinfo", _numeric_only()), \
            mock.patch.object(socket.socket, "connect", side_effect=OSError(101, "fuzz: no connects")):
        try:
            ssrf.open_connection(host, port, 0.1).close()
        except (ssrf.AddressRefused, OSError, ValueError, OverflowError):
            pass  # what Guarded._new_conn maps to urllib3's connection errors


_URLISH = st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
                    st.builds(lambda s, h, p: f"{s}://{h}{p}", st.sampled_from(["http", "https", "ftp", ""]),
                              _HOSTISH, st.text(max_size=20)))


@pytest.mark.fuzz
@given(_URLISH, _URLISH)
def test_the_url_check_and_redirects_fail_only_with_a_kind(url, location):
    client = _client()
    with mock.patch.object(socket, "getaddrinfo", _numeric_only()):
        for call in (lambda: client._check_url(url, check_robots=False),
                     lambda: client._check_url(_join_location("http://site.test/", location), check_robots=False)):
            try:
                call()
            except _Failure as failure:
                assert failure.kind in (http_client.BAD_URL, http_client.DNS, http_client.PRIVATE)
