"""What a run writes beside its trace for the ISO 15118 session: the capture and the TLS key log.

Every plan run that has a -20 session writes OUT/<plan>.v2g.pcapng (the session as Ethernet/IPv6/
TCP frames, SDP included, that Wireshark opens) and OUT/<plan>.keylog.txt (NSS key log: with it a
V2G dissector sees through TLS 1.3). In-memory sessions in virtual time are synthesized from the
bytes on the rig's link, time-stamped on the run's timeline from a fixed epoch (the same seed
gives the same file); the key log is also put into the capture's decryption secrets block when
the run ends, so the capture alone decrypts.

The emulated bench's TLS credentials come from a throwaway test PKI (rig.v2g.pki) made once per
process in a private temporary folder (0700) and removed at exit: keys never leave it. Under
`rig run`, the run's helper process makes one for the whole run while the run starts, in its own
private folder (PKI_ENV names it; rig.report.figureserver), and every process of the run uses
that one once it is complete.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rig.v2g.capture import CaptureWriter
    from rig.v2g.transport.tls import TlsConfig

#: The synthesized addresses of an emulated session: the EV and the EVSE on one link-local
#: segment, the SECC's TCP port as it would announce it in SDP.
EV_ADDRESS = ("fe80::1", 50_000)
EVSE_ADDRESS = ("fe80::2", 64_109)
SDP_PORT = 15118


@dataclass
class SessionFiles:
    """The capture and key log of one plan run (either may be None: not written)."""

    pcapng: Path | None = None
    keylog: Path | None = None
    epoch_ns: int = 0
    _writer: CaptureWriter | None = field(default=None, repr=False)
    error: str | None = None

    @classmethod
    def for_run(cls, out_dir: Path | None, stem: str, epoch_ns: int) -> SessionFiles:
        if out_dir is None:
            return cls(epoch_ns=epoch_ns)
        return cls(out_dir / f"{stem}.v2g.pcapng", out_dir / f"{stem}.keylog.txt", epoch_ns)

    @property
    def writer(self) -> CaptureWriter | None:
        """The run's capture writer, opened on first use (None without an output folder or
        after a write failure: the session never depends on its capture)."""
        if self._writer is None and self.pcapng is not None and self.error is None:
            from rig.v2g.capture import CaptureWriter

            try:
                self._writer = CaptureWriter(self.pcapng, epoch_ns=self.epoch_ns)
            except OSError as exc:
                self.error = f"cannot write {self.pcapng}: {exc.strerror or exc}"
        return self._writer

    def key_line(self, line: str) -> None:
        """One NSS key-log line (created 0600: the secrets are the session's)."""
        if self.keylog is None:
            return
        import os

        try:
            fd = os.open(self.keylog, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, (line.rstrip("\n") + "\n").encode("ascii"))
            finally:
                os.close(fd)
        except OSError as exc:
            self.error = self.error or f"cannot write {self.keylog}: {exc.strerror or exc}"

    def sdp_exchange(self, t: float, tls: bool) -> None:
        """The SDP request and response that precede a session, as a real EV and EVSE send them."""
        writer = self.writer
        if writer is None:
            return
        from rig.v2g.sdp import SdpRequest, SdpResponse, Security

        security = Security.TLS if tls else Security.NO_TLS
        exchange = writer.sdp((EV_ADDRESS[0], 50_001), (EVSE_ADDRESS[0], SDP_PORT))
        try:
            exchange.request(t, SdpRequest(security).encode())
            exchange.response(
                t, SdpResponse(IPv6Address(EVSE_ADDRESS[0]), EVSE_ADDRESS[1], security).encode()
            )
        except (OSError, ValueError) as exc:
            self.error = self.error or f"capture: {exc}"

    def close(self) -> None:
        """Close the capture; add the key log to it as a decryption secrets block."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        with contextlib.suppress(OSError, ValueError):
            writer.close()
        if self.keylog is not None and self.keylog.is_file() and self.pcapng is not None:
            from rig.v2g.capture import inject_tls_keys

            try:
                inject_tls_keys(self.pcapng, self.keylog.read_text(encoding="ascii"))
            except (OSError, ValueError) as exc:
                self.error = self.error or f"capture: cannot add the key log: {exc}"


_PKI: Path | None = None
#: The environment variable naming the run's shared emulated PKI (a folder that appears complete
#: or not at all: it is written under another name and renamed).
PKI_ENV = "RIG_EMULATED_PKI"


def emulated_pki() -> Path:
    """A test PKI for the emulated bench: the run's (PKI_ENV) if it is there, else one made once
    per process and removed at exit."""
    global _PKI
    shared = os.environ.get(PKI_ENV)
    if shared and Path(shared).is_dir():
        return Path(shared)
    if _PKI is None or not _PKI.is_dir():
        from rig.v2g.pki import init_pki

        folder = Path(tempfile.mkdtemp(prefix="rig-pki-"))  # 0700
        init_pki(folder / "pki")
        atexit.register(shutil.rmtree, folder, True)
        _PKI = folder / "pki"
    return _PKI


def make_shared_pki(final: Path) -> None:
    """Make a test PKI at `final` for a whole run: written beside it and renamed into place, so
    that a process that finds the folder finds it complete."""
    from rig.v2g.pki import init_pki

    partial = final.with_name(final.name + ".partial")
    init_pki(partial)
    os.rename(partial, final)


def tls_configs(
    pki_dir: Path, key_log: object | None = None, *, secc_presents: str = "SECC_LEAF"
) -> tuple[TlsConfig, TlsConfig]:
    """(EVCC, SECC) TLS settings from a test PKI made by `rig pki init`: the EV presents its
    vehicle chain and trusts the V2G root; the SECC presents its chain and trusts the OEM root
    (mutual authentication, [V2G20-1856]). `secc_presents` names another leaf for the SECC
    (an expired one, one under the wrong root ...: a defective DUT's TLS)."""
    from rig.v2g.host import evcc_tls_config, secc_tls_config
    from rig.v2g.pki import Entity, PkiFolder

    pki = PkiFolder(pki_dir)
    sink = key_log if callable(key_log) else None
    evcc = evcc_tls_config(pki, key_log=sink)
    return evcc, secc_tls_config(pki, leaf=Entity[secc_presents])
