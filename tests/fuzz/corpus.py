"""The EXI vectors of ../shared/vectors/everest as typed seeds, shared by the fuzzers and cross-checks.

Only ISO 15118-20 and supportedAppProtocol streams are kept (the DIN 70121 and V2GTP files are not
documents of the six namespaces rig.v2g.exi decodes). Streams that occur in several files (encode
and decode cases of one message share a stream) are kept once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# Namespace URI of a vector -> the `ns` argument of rig.v2g.exi.decode.
NS_BY_URI: dict[str, str] = {
    "urn:iso:15118:2:2010:AppProtocol": "app",
    "urn:iso:std:iso:15118:-20:CommonMessages": "common",
    "urn:iso:std:iso:15118:-20:DC": "dc",
    "urn:iso:std:iso:15118:-20:AC": "ac",
    "urn:iso:std:iso:15118:-20:ACDP": "acdp",
    "urn:iso:std:iso:15118:-20:WPT": "wpt",
}
NAMESPACES: tuple[str, ...] = ("app", "common", "dc", "ac", "acdp", "wpt")

# vectors/README.md: issue_vector_3 is the 31-byte AC_ChargeLoopRes of cbexigen issue #52 that a
# correct decoder rejects; issue_vector_5 (cbexigen #71) is unresolved (EVerest's codec rejects it).
KNOWN_BAD = frozenset({"issue_vector_3"})
OPEN_QUESTION = frozenset({"issue_vector_5"})


@dataclass(frozen=True)
class Vector:
    """One EXI document from the shared vectors."""

    name: str  # file stem
    ns: str
    root: str
    data: bytes
    known_bad: bool
    open_question: bool


def load_vectors(shared: Path) -> list[Vector]:
    """Every distinct -20 / AppProtocol stream under shared/vectors/everest, sorted by name."""
    seen: set[tuple[str, bytes]] = set()
    vectors: list[Vector] = []
    for path in sorted((shared / "vectors" / "everest").glob("*/*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        ns = NS_BY_URI.get(str(record.get("namespace")))
        if ns is None or record.get("kind") != "exi":
            continue
        data = bytes.fromhex(record["hex"])
        if (ns, data) in seen:
            continue
        seen.add((ns, data))
        vectors.append(
            Vector(
                name=path.stem,
                ns=ns,
                root=str(record.get("root_element", "")),
                data=data,
                known_bad=path.stem in KNOWN_BAD,
                open_question=path.stem in OPEN_QUESTION,
            )
        )
    return vectors
