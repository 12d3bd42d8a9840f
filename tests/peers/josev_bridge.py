"""JSON-lines bridge to the Java EXI codec of the PyPI package `iso15118` (Josev), run in .venv-peer.

The rig never imports the peer: this script runs under .venv-peer/bin/python as a long-lived child
process and answers one JSON object per line on stdout for each request line on stdin:

    {"op": "encode", "ns": "dc", "json": {<our JSON form>}}  -> {"hex": "80..."}      | {"error": ".."}
    {"op": "decode", "ns": "dc", "hex": "80..."}             -> {"json": {<our form>}} | {"error": ".."}
    {"op": "bench",  "ns": "dc", "json": {..}, "hex": "..", "number": 20, "repeat": 5, "warmup": 200}
                                                             -> {"encode_s": [..], "decode_s": [..],
                                                                 "py4j_null_s": [..]} (seconds per call)
    {"op": "info"}                                           -> versions, jar, JVM start time
    {"op": "ping"}                                           -> {"ok": true}
    {"op": "quit"}                                           -> {"ok": true}, then exit

`ns` is one of app, common, dc, ac, acdp, wpt, din, iso2 (as in rig.v2g.exi) or xmldsig (the
peer's fragment mode for ds:SignedInfo). An optional "id" in a request is echoed in its answer.

The codec is driven exactly as the package drives it (iso15118/shared/exificient_exi_codec.py):
py4j's JavaGateway.launch_gateway() starts a JVM on the package's EXICodec.jar, and
com.siemens.ct.exi.main.cmd.EXICodec.encode(json_string, namespace_uri) / decode(bytes, namespace_uri)
do the work. Inside the jar, JSON is bound to JAXB classes (EclipseLink MOXy), marshalled to XML and
encoded with EXIficient; decoding runs the other way.

JSON shape of the peer (found by reading the jar and probing it, iso15118 0.31.2, codec 1.55):
the same shape as ours for everything the -20 and AppProtocol messages contain: the root object is
keyed by the global element name, elements and attributes by their schema names with no prefix
(attributes such as Parameter/@Name or @Id appear as plain keys), hexBinary as upper-case hex,
base64Binary as base64 with padding, enumerations by their schema value, booleans and integers as
JSON literals, maxOccurs > 1 particles always as arrays (also with one item), empty complex elements
as {}, a substitution-group member under its own element name. Differences, all mechanical:

- simpleContent text (ds:SignatureValue, the one such type in the -20 schema set): MOXy names it
  "value", we name it "CONTENT". Renamed here, both ways, in every object (--text-key).
- mixed-content types (ds:SignatureMethodType, ds:KeyValueType): the peer returns a child that
  occurs at most once as a one-item array. Undone on the test side (unwrap_mixed in
  tests/v2g/exi/test_peer_crosscheck.py), where our schema metadata says which keys are single.

Nothing here knows about individual messages. What the peer does wrong on its own (ignores
unknown keys; always writes AppProtocol SchemaID; normalises TABs in attribute values; rewrites
SignedInfo in xmldsig fragment mode; has no binding for ACDP and WPT) is left visible to the tests
on purpose: each is a named rule there.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

NAMESPACES: dict[str, str] = {
    "app": "urn:iso:15118:2:2010:AppProtocol",
    "common": "urn:iso:std:iso:15118:-20:CommonMessages",
    "dc": "urn:iso:std:iso:15118:-20:DC",
    "ac": "urn:iso:std:iso:15118:-20:AC",
    "acdp": "urn:iso:std:iso:15118:-20:ACDP",
    "wpt": "urn:iso:std:iso:15118:-20:WPT",
    "xmldsig": "http://www.w3.org/2000/09/xmldsig#",
    "din": "urn:din:70121:2012:MsgDef",
    "iso2": "urn:iso:15118:2:2013:MsgDef",
}

# Key renames, ours -> peer. MOXy names the character content of a simpleContent type "value";
# our JSON form names it by OUR_TEXT_KEY (settable from the client with --text-key, since the
# name is decided by rig.v2g.exi).
PEER_TEXT_KEY = "value"


def _rename_keys(obj: Any, mapping: dict[str, str]) -> Any:
    """Rename dict keys recursively by `mapping`; values are left untouched."""
    if isinstance(obj, dict):
        return {mapping.get(k, k): _rename_keys(v, mapping) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rename_keys(v, mapping) for v in obj]
    return obj


class Bridge:
    """One JVM running the peer codec, and the JSON translation around it."""

    def __init__(self, text_key: str) -> None:
        t0 = time.perf_counter()
        from iso15118.shared.exificient_exi_codec import ExificientEXICodec

        t1 = time.perf_counter()
        self.codec = ExificientEXICodec()  # launches the JVM through py4j, as the package does
        t2 = time.perf_counter()
        self.java = self.codec.exi_codec
        self.to_peer = {text_key: PEER_TEXT_KEY} if text_key != PEER_TEXT_KEY else {}
        self.from_peer = {v: k for k, v in self.to_peer.items()}
        self.import_s = t1 - t0
        self.jvm_start_s = t2 - t1

    def namespace(self, ns: str) -> str:
        try:
            return NAMESPACES[ns]
        except KeyError:
            raise ValueError(f"unknown ns {ns!r}; expected one of {sorted(NAMESPACES)}") from None

    def encode(self, ns: str, message: dict[str, Any]) -> bytes:
        text = json.dumps(_rename_keys(message, self.to_peer))
        data = self.java.encode(text, self.namespace(ns))
        if data is None:
            raise RuntimeError(self.java.get_last_encoding_error() or "encode returned null")
        return bytes(data)

    def decode(self, ns: str, data: bytes) -> dict[str, Any]:
        text = self.java.decode(data, self.namespace(ns))
        if text is None:
            raise RuntimeError(self.java.get_last_decoding_error() or "decode returned null")
        obj = json.loads(text)
        if not isinstance(obj, dict):
            raise RuntimeError(f"peer decoded to a non-object: {text[:200]}")
        result: dict[str, Any] = _rename_keys(obj, self.from_peer)
        return result

    def bench(self, request: dict[str, Any]) -> dict[str, Any]:
        """Time the codec calls inside this process (py4j call into the JVM included, pipe not)."""
        uri = self.namespace(request["ns"])
        number = int(request.get("number", 20))
        repeat = int(request.get("repeat", 5))
        warmup = int(request.get("warmup", 200))
        text = json.dumps(_rename_keys(request["json"], self.to_peer))
        data = bytes.fromhex(request["hex"])
        encode, decode, version = self.java.encode, self.java.decode, self.java.get_version
        # Untimed calls first: the JIT and the codec's caches settle over the first hundreds.
        for _ in range(warmup):
            encode(text, uri)
            decode(data, uri)
        result: dict[str, list[float]] = {"encode_s": [], "decode_s": [], "py4j_null_s": []}
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(number):
                encode(text, uri)
            t1 = time.perf_counter()
            for _ in range(number):
                decode(data, uri)
            t2 = time.perf_counter()
            for _ in range(number):
                version()  # a call that does no work: what py4j itself costs per round trip
            t3 = time.perf_counter()
            result["encode_s"].append((t1 - t0) / number)
            result["decode_s"].append((t2 - t1) / number)
            result["py4j_null_s"].append((t3 - t2) / number)
        return dict(result)

    def info(self) -> dict[str, Any]:
        import importlib.metadata

        from iso15118.shared.settings import JAR_FILE_PATH

        jvm = self.codec.gateway.jvm
        return {
            "iso15118": importlib.metadata.version("iso15118"),
            "py4j": importlib.metadata.version("py4j"),
            "codec_version": float(self.java.get_version()),
            "jar": JAR_FILE_PATH,
            "java": str(jvm.java.lang.System.getProperty("java.version")),
            "python": sys.version.split()[0],
            "import_s": self.import_s,
            "jvm_start_s": self.jvm_start_s,
        }

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "encode":
            return {"hex": self.encode(request["ns"], request["json"]).hex()}
        if op == "decode":
            return {"json": self.decode(request["ns"], bytes.fromhex(request["hex"]))}
        if op == "bench":
            return self.bench(request)
        if op == "info":
            return self.info()
        if op == "ping":  # no work at all: what one pipe round trip costs
            return {"ok": True}
        raise ValueError(f"unknown op {op!r}")


def main(argv: list[str]) -> int:
    text_key = PEER_TEXT_KEY
    if len(argv) == 2 and argv[0] == "--text-key":
        text_key = argv[1]
    elif argv:
        print("usage: josev_bridge.py [--text-key NAME]", file=sys.stderr)
        return 2
    # stdout is the answer channel: keep it for ourselves and send anything else that writes to
    # fd 1 (the package's logging, a JVM message) to stderr.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    bridge = Bridge(text_key)
    channel.write(json.dumps({"ready": True, **bridge.info()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        answer: dict[str, Any]
        request: dict[str, Any] = {}
        try:
            request = json.loads(line)
            if request.get("op") == "quit":
                channel.write(json.dumps({"ok": True}) + "\n")
                break
            answer = bridge.handle(request)
        except Exception as exc:  # one bad request must not end the session
            answer = {"error": f"{type(exc).__name__}: {exc}".strip()}
        if "id" in request:
            answer["id"] = request["id"]
        channel.write(json.dumps(answer) + "\n")
    bridge.codec.gateway.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
