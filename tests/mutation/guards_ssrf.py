"""Guards of the SSRF defence and of the checkpoint files (issue 14 items 8 and 9).

Switched off, the SSRF guards would let the client connect where it must not:
the tests that must then fail run with every non-loopback connect refused
(tests/transforms/hostile_server.forbid_off_loopback), so nothing leaves loopback.
"""

import pickle

from tests.mutation.registry import Guard
from transforms.checkpoint_format import RECORD_TYPES

_S = "tests/transforms/test_ssrf.py"
_H = "tests/transforms/test_hostile.py"
_C = "tests/transforms/test_checkpoint.py"
_TAMPERED = f"{_C}::test_tampered_checkpoint_file_is_ignored_with_a_warning"


def _trust_the_tag(schema):
    """record_type without its schema comparison: the class the file names."""
    return RECORD_TYPES[(schema.metadata or {}).get(b"wit.record", b"").decode("ascii", errors="replace")]


GUARDS = [
    Guard("ssrf_address_policy", "transforms.ssrf:refusal", lambda *a, **k: None,
          (f"{_S}::test_refused_addresses", f"{_H}::test_guard_never_connects_to_refused_addresses",
           f"{_H}::test_misbehaviour_gets_its_reason_in_bounded_time[/to-6to4-loopback]")),
    Guard("ssrf_connect_time_check", "transforms.ssrf:check_resolved", lambda *a, **k: None,
          (f"{_S}::test_dns_rebinding_never_reaches_loopback",
           f"{_S}::test_a_name_with_any_refused_address_is_refused")),
    Guard("ssrf_guarded_connections", "transforms.deadline:guarded", lambda base: base,
          (f"{_S}::test_dns_rebinding_never_reaches_loopback",)),
    Guard("ssrf_peer_check", "transforms.ssrf:verify_peer", lambda *a, **k: None,
          (f"{_S}::test_the_connected_peer_is_checked_before_a_byte_is_sent",)),
    Guard("ssrf_redirect_hop_precheck", "transforms.http_client:HttpClient._check_address", lambda self, parts: None,
          (f"{_S}::test_behind_a_proxy_every_hop_target_is_still_checked",)),
    Guard("noai_before_the_body", "transforms.response_headers:noai_directive", lambda *a, **k: None,
          (f"{_H}::test_noai_is_decided_before_the_body",)),
    # "off" is what checkpoints were: a pickle, trusted.
    Guard("checkpoint_never_unpickled", "transforms.checkpoint_format:decode", lambda data: pickle.loads(data),
          (f"{_TAMPERED}[pickle]", f"{_TAMPERED}[garbage]")),
    Guard("checkpoint_schema", "transforms.checkpoint_format:record_type", _trust_the_tag,
          (f"{_TAMPERED}[wrong_schema]",)),
    Guard("checkpoint_field_types", "transforms.checkpoint_format:_check",
          lambda value, hint, optional, where: value, (f"{_TAMPERED}[null_field]",)),
    Guard("checkpoint_kind_and_blob", "transforms.checkpoint:check_file", lambda *a, **k: None,
          (f"{_TAMPERED}[wrong_kind]", f"{_TAMPERED}[blob_outside]")),
]
