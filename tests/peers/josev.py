"""Client side of the Josev peer: starts tests/peers/josev_bridge.py in .venv-peer and talks to it.

The peer (the PyPI package `iso15118` and its Java EXI codec) lives in its own virtual environment,
made by `.ci/peer-setup`; the rig's venv never imports it. Tests get one bridge per session:

    @pytest.fixture(scope="session")
    def peer() -> JosevPeer:
        return josev.session_peer()

session_peer() calls `missing(reason)` from tests/conftest.py when .venv-peer, the package or Java
is absent: a skip locally, a failure under RIG_REQUIRE_OPTIONAL=1 (CI).
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

TESTS = Path(__file__).resolve().parent.parent
REPO = TESTS.parent
BRIDGE = Path(__file__).resolve().parent / "josev_bridge.py"
PEER_VENV = Path(os.environ.get("RIG_PEER_VENV", REPO / ".venv-peer"))

# rig.v2g.exi's JSON key for the text of a simpleContent type (ds:SignatureValue); the bridge
# renames it to MOXy's "value" and back.
OUR_TEXT_KEY = "CONTENT"

# JVM start plus loading the codec's grammars takes 2-3 s here; allow for a loaded CI machine.
START_TIMEOUT_S = 120.0
# A single encode or decode takes milliseconds; a bench request takes seconds.
REQUEST_TIMEOUT_S = 60.0
BENCH_TIMEOUT_S = 600.0


class PeerError(Exception):
    """The peer codec refused a request (its own error text is the message)."""


class PeerDied(RuntimeError):
    """The bridge process ended or stopped answering."""


def root_conftest() -> ModuleType:
    """tests/conftest.py as a module, also when another conftest.py took the module name."""
    root = TESTS / "conftest.py"
    mod = sys.modules.get("conftest")
    if mod is not None and Path(getattr(mod, "__file__", "")).resolve() == root:
        return mod
    # pytest imports every conftest.py outside a package as module "conftest"; the last one wins.
    cached = sys.modules.get("_rig_tests_root_conftest")
    if cached is not None:
        return cached
    spec = importlib.util.spec_from_file_location("_rig_tests_root_conftest", root)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["_rig_tests_root_conftest"] = mod
    return mod


def missing(reason: str) -> None:
    """tests/conftest.py's missing(): skip locally, fail under RIG_REQUIRE_OPTIONAL=1."""
    fn: Callable[[str], None] = root_conftest().missing
    fn(reason)


def peer_python() -> Path:
    return PEER_VENV / "bin" / "python"


def unavailable_reason() -> str | None:
    """Why the peer cannot run here, or None when it can."""
    python = peer_python()
    if not python.exists():
        return f"peer venv {PEER_VENV} not found (run .ci/peer-setup)"
    if shutil.which("java") is None:
        return "java not found (the iso15118 EXI codec runs in a JVM; run .ci/peer-setup)"
    probe = subprocess.run(
        [str(python), "-c", "import iso15118.shared.exificient_exi_codec"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        return f"iso15118 not importable in {PEER_VENV}: {probe.stderr.strip()[-300:]}"
    return None


class JosevPeer:
    """A running bridge: encode/decode in our JSON form through the peer's codec."""

    def __init__(self, text_key: str = OUR_TEXT_KEY) -> None:
        self._proc = subprocess.Popen(
            [str(peer_python()), str(BRIDGE), "--text-key", text_key],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=str(REPO),
            bufsize=1,
        )
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._stderr_tail: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        t0 = time.perf_counter()
        ready = self._read(START_TIMEOUT_S)
        self.start_s = time.perf_counter() - t0
        if not ready.get("ready"):
            raise PeerDied(f"bridge did not start: {ready}")
        self.info: dict[str, Any] = ready

    def _pump_stdout(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def _pump_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr_tail = [*self._stderr_tail[-40:], line.rstrip()]

    def _read(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._answers.get(timeout=timeout)
        except queue.Empty:
            self.close()
            raise PeerDied(f"bridge gave no answer within {timeout} s") from None
        if line is None:
            tail = "\n".join(self._stderr_tail[-15:])
            raise PeerDied(f"bridge exited (code {self._proc.poll()}); stderr:\n{tail}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def request(self, req: dict[str, Any], timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
        with self._lock:
            if self._proc.poll() is not None:
                raise PeerDied(f"bridge already exited (code {self._proc.returncode})")
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(req) + "\n")
            self._proc.stdin.flush()
            answer = self._read(timeout)
        if "error" in answer:
            raise PeerError(answer["error"])
        return answer

    def encode(self, ns: str, message: dict[str, Any]) -> bytes:
        """EXI document (with the 0x80 header) the peer makes from our JSON form."""
        return bytes.fromhex(self.request({"op": "encode", "ns": ns, "json": message})["hex"])

    def decode(self, ns: str, data: bytes) -> dict[str, Any]:
        """Our JSON form of what the peer reads from an EXI document."""
        result: dict[str, Any] = self.request({"op": "decode", "ns": ns, "hex": data.hex()})["json"]
        return result

    def bench(
        self,
        ns: str,
        message: dict[str, Any],
        data: bytes,
        number: int = 20,
        repeat: int = 5,
        warmup: int = 200,
    ) -> dict[str, list[float]]:
        """Per-call seconds of the peer's encode/decode and of an empty py4j call, timed in-process."""
        req = {"op": "bench", "ns": ns, "json": message, "hex": data.hex(), "warmup": warmup}
        answer = self.request({**req, "number": number, "repeat": repeat}, BENCH_TIMEOUT_S)
        return {k: v for k, v in answer.items() if k.endswith("_s")}

    def round_trip_s(self, n: int = 200) -> float:
        """Median seconds of one pipe round trip to the bridge (a `ping`, which does no work)."""
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            self.request({"op": "ping"})
            times.append(time.perf_counter() - t0)
        times.sort()
        return times[len(times) // 2]

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                assert self._proc.stdin is not None
                self._proc.stdin.write('{"op": "quit"}\n')
                self._proc.stdin.flush()
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait(timeout=10)


_SESSION: dict[str, JosevPeer] = {}


def session_peer(text_key: str = OUR_TEXT_KEY) -> JosevPeer:
    """The bridge of this test session (one per text key); `missing(...)` when the peer cannot
    run here."""
    if text_key not in _SESSION:
        reason = unavailable_reason()
        if reason is not None:
            missing(reason)
        peer = _SESSION[text_key] = JosevPeer(text_key)
        atexit.register(peer.close)
    return _SESSION[text_key]
