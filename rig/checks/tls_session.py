"""tls_session: the session ran over TLS 1.3 with a cipher suite of -20's list, and the peer's
certificate chain was accepted; a refused handshake fails with the reason the rig's TLS gave.

Judged from the rig's own records of its link (the "tls_established" event with the version and
suite OpenSSL agreed, or the reason the link closed), never from the DUT's claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rig.checks import Context, Marker, Verdict, register
from rig.trace import Trace

CLAUSE = "ISO 15118-20 [V2G20-1856], [V2G20-2459]: TLS 1.3, mutual authentication, two suites"
SUITES = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")


@register(
    "tls_session",
    summary="The session's TLS 1.3 handshake completed with a -20 cipher suite and the DUT's "
    "certificate chain was accepted",
    clause=CLAUSE,
)
def tls_session(trace: Trace, ctx: Context, params: Mapping[str, Any]) -> list[Verdict]:
    established = [e for e in trace.events if e.src == "v2g" and e.name == "tls_established"]
    refused = [
        e
        for e in trace.events
        if e.src == "v2g"
        and e.name == "link_closed"
        and str(e.data.get("reason", "")).startswith("tls ")
    ]
    if refused and not established:
        first = refused[0]
        return [
            Verdict(
                "tls_session",
                "fail",
                None,
                None,
                "",
                f"the TLS handshake was refused at t={first.t:.3f} s: {first.data.get('reason')}",
                CLAUSE,
                (Marker("time", "TLS refused", first.t),),
            )
        ]
    if not established:
        return [
            Verdict(
                "tls_session",
                "error",
                None,
                None,
                "",
                "no TLS handshake in the trace (the bench's DUT runs without TLS, or no session)",
                CLAUSE,
            )
        ]
    bad = [
        e
        for e in established
        if e.data.get("version") != "TLSv1.3" or e.data.get("cipher_suite") not in SUITES
    ]
    if bad:
        e = bad[0]
        return [
            Verdict(
                "tls_session",
                "fail",
                None,
                None,
                "",
                f"handshake at t={e.t:.3f} s agreed {e.data.get('version')} with "
                f"{e.data.get('cipher_suite')}: not -20's TLS 1.3 with {' or '.join(SUITES)}",
                CLAUSE,
            )
        ]
    e = established[-1]
    return [
        Verdict(
            "tls_session",
            "pass",
            None,
            None,
            "",
            f"{len(established)} handshake(s): {e.data.get('version')}, {e.data.get('cipher_suite')}, "
            f"group {e.data.get('group')}, peer {e.data.get('peer')}",
            CLAUSE,
        )
    ]
