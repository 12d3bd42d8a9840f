"""Run under .venv-peer: feed our frames to Josev's own message parsing (EXI().from_exi, the call its
EVCC and SECC make on every message they receive: Java decode, then its pydantic models).

stdin: one JSON object per line, {"ns": "dc", "hex": "80..."} (the EXI document, no V2GTP header);
stdout: one line per request, {"type": "<Josev class>"} or {"error": "<what Josev said>"}.
The rig never imports Josev; tests/v2g/engines/test_peer_frames.py runs this as a child process.
"""

from __future__ import annotations

import json
import sys

NAMESPACES = {
    "app": "urn:iso:15118:2:2010:AppProtocol",
    "common": "urn:iso:std:iso:15118:-20:CommonMessages",
    "dc": "urn:iso:std:iso:15118:-20:DC",
    "ac": "urn:iso:std:iso:15118:-20:AC",
}


def main() -> int:
    answers = sys.stdout
    sys.stdout = sys.stderr  # Josev logs to stdout; keep that out of the answers
    from iso15118.shared.exi_codec import EXI
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    from iso15118.shared.settings import SettingKey, shared_settings

    shared_settings.update({SettingKey.MESSAGE_LOG_EXI: False, SettingKey.MESSAGE_LOG_JSON: False})

    exi = EXI()
    exi.set_exi_codec(ExificientEXICodec())
    for line in sys.stdin:
        request = json.loads(line)
        try:
            message = exi.from_exi(bytes.fromhex(request["hex"]), NAMESPACES[request["ns"]])
            answer = {"type": type(message).__name__}
        except Exception as e:  # Josev's verdict is the answer, whatever its kind
            detail = f"{type(e).__name__}: {e} {vars(e) if hasattr(e, '__dict__') else ''}"
            if e.__cause__ is not None:
                detail += f" <- {type(e.__cause__).__name__}: {e.__cause__}"
            answer = {"error": detail[:3000]}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
