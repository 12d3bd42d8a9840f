"""rig.v2g.pki: the folder and its modes, the certificate profile, chains that verify (with
cryptography's own verifier), negative variants that fail for their stated reason, the TOML
profile, the CLI, and Josev's folder layout."""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tls_harness import MemoryPipe, StdlibPeer, attach, evcc_config

from rig.v2g import pki as pki_module
from rig.v2g.pki import (
    JOSEV_CHAINS,
    JOSEV_PASSWORD_FILES,
    JOSEV_STEMS,
    JOSEV_SUBDIR,
    Curve,
    Entity,
    PkiError,
    PkiFolder,
    PkiProfile,
    init_pki,
)
from rig.v2g.pki_cli import main as pki_main
from rig.v2g.tls_records import (
    KeyLog,
    decode_streams,
    iter_handshake_messages,
    parse_records,
    parse_server_hello,
)
from rig.v2g.transport.tls import TlsContext

REPO = Path(__file__).resolve().parents[3]
LEAVES = [e for e in Entity if not PkiProfile().certificates[e].ca]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_folder_holds_every_certificate_key_and_chain(pki: PkiFolder) -> None:
    manifest = json.loads((pki.directory / "manifest.json").read_text())
    assert set(manifest["entities"]) == {e.value for e in Entity}
    for entity in Entity:
        assert (
            pki.certificate(entity).subject.rfc4514_string()
            == (manifest["entities"][entity]["subject"])
        )
        der = (pki.directory / "certs" / f"{entity}.der").read_bytes()
        assert x509.load_der_x509_certificate(der) == pki.certificate(entity)
        key = pki.private_key(entity)
        assert key.public_key() == pki.certificate(entity).public_key()
    for leaf in LEAVES:
        chain = pki.chain(leaf)
        assert chain[0] == pki.certificate(leaf)
        for child, parent in zip(chain, [*chain[1:], pki.root(leaf)], strict=True):
            child.verify_directly_issued_by(parent)
    assert "PRIVATE KEY" not in (pki.directory / "manifest.json").read_text()


def test_keys_are_0600_and_directories_0700(pki: PkiFolder) -> None:
    assert _mode(pki.directory) == 0o700
    for path in pki.directory.rglob("*"):
        if path.is_dir():
            assert _mode(path) == 0o700, path
        elif path.suffix == ".key" or path.name.endswith("Password.txt"):
            assert _mode(path) == 0o600, path


def test_secret_files_are_born_0600_whatever_the_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: dict[str, int] = {}
    real_open = os.open

    def recording_open(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if flags & os.O_CREAT:
            created[str(path)] = mode
            assert flags & os.O_EXCL, f"{path} opened without O_EXCL"
        return real_open(path, flags, mode, **kw)

    real_mkdir = os.mkdir
    made: dict[str, int] = {}

    def recording_mkdir(path: Any, mode: int = 0o777, **kw: Any) -> None:
        made[str(path)] = mode
        real_mkdir(path, mode, **kw)

    monkeypatch.setattr(pki_module.os, "open", recording_open)
    monkeypatch.setattr(pki_module.os, "mkdir", recording_mkdir)
    old = os.umask(0)  # the most permissive umask: only the mode given at creation protects
    try:
        folder = init_pki(tmp_path / "pki")
    finally:
        os.umask(old)
    keys = [p for p in created if p.endswith(".key") or p.endswith("Password.txt")]
    assert len(keys) == len(Entity) + len(JOSEV_STEMS) + len(JOSEV_PASSWORD_FILES)
    assert {created[p] for p in keys} == {0o600}
    assert made and set(made.values()) == {0o700}
    assert all(_mode(Path(p)) == 0o600 for p in keys)
    assert _mode(folder.directory) == 0o700


def test_default_profile_is_v2g20_p521_with_sha512(pki: PkiFolder) -> None:
    for entity in Entity:
        cert = pki.certificate(entity)
        expected = Curve.SECP256R1 if entity in pki_module.WRONG_CURVE_ENTITIES else Curve.SECP521R1
        assert Curve.of_key(cert.public_key()) is expected
        assert cert.signature_hash_algorithm is not None
        assert cert.signature_hash_algorithm.name == "sha512"  # every issuer is P-521


def test_certificate_profile_extensions(pki: PkiFolder) -> None:
    def ext(entity: Entity, kind: type[Any]) -> Any:
        return pki.certificate(entity).extensions.get_extension_for_class(kind)

    for entity, path_length in [
        (Entity.V2G_ROOT, None),
        (Entity.CPO_SUB_CA1, 1),
        (Entity.CPO_SUB_CA2, 0),
        (Entity.OEM_SUB_CA1, 1),
        (Entity.OEM_SUB_CA2, 0),
    ]:
        constraints = ext(entity, x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca
        assert constraints.value.path_length == path_length
        usage = ext(entity, x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    for leaf in (Entity.SECC_LEAF, Entity.VEHICLE_LEAF, Entity.OEM_PROV_LEAF):
        assert not ext(leaf, x509.BasicConstraints).value.ca
        usage = ext(leaf, x509.KeyUsage).value
        assert usage.digital_signature and usage.key_agreement and not usage.key_cert_sign
        aki = ext(leaf, x509.AuthorityKeyIdentifier).value
        issuer = pki.chain(leaf)[1]
        assert aki.key_identifier == ext_of(issuer, x509.SubjectKeyIdentifier).digest
    secc = pki.certificate(Entity.SECC_LEAF).subject
    assert secc.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "DE*V2H*E0001*1"
    assert secc.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)[0].value == "CPO"
    for entity, dc in [(Entity.V2G_ROOT, "V2G"), (Entity.OEM_ROOT, "OEM"), (Entity.MO_ROOT, "MO")]:
        name = pki.certificate(entity).subject
        assert name.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)[0].value == dc
    secc_cert = pki.certificate(Entity.SECC_LEAF)
    assert secc_cert.not_valid_after_utc - secc_cert.not_valid_before_utc == dt.timedelta(days=60)


def ext_of(cert: x509.Certificate, kind: type[Any]) -> Any:
    return cert.extensions.get_extension_for_class(kind).value


def _verifier(pki: PkiFolder, leaf: Entity, when: dt.datetime) -> verification.ClientVerifier:
    store = verification.Store([pki.root(leaf)])
    return (
        verification.PolicyBuilder()
        .store(store)
        .time(when)
        # -20 leaves carry no subjectAltName; the CA side keeps the Web PKI's checks
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )


GOOD_LEAVES = [
    Entity.SECC_LEAF,
    Entity.CPS_LEAF,
    Entity.OEM_PROV_LEAF,
    Entity.VEHICLE_LEAF,
    Entity.CONTRACT_LEAF,
]


@pytest.mark.parametrize("leaf", GOOD_LEAVES)
def test_good_chains_verify_with_cryptography(pki: PkiFolder, leaf: Entity) -> None:
    chain = pki.chain(leaf)
    now = dt.datetime.now(dt.UTC)
    verified = _verifier(pki, leaf, now).verify(chain[0], list(chain[1:]))
    assert len(verified.chain) == 4  # leaf, sub-CA 2, sub-CA 1, root


@pytest.mark.parametrize(
    ("leaf", "trusted_root", "message"),
    [
        (Entity.SECC_LEAF_EXPIRED, Entity.V2G_ROOT, "not valid at validation time"),
        (Entity.SECC_LEAF_NOT_YET_VALID, Entity.V2G_ROOT, "not valid at validation time"),
        (Entity.VEHICLE_LEAF_EXPIRED, Entity.OEM_ROOT, "not valid at validation time"),
        (Entity.VEHICLE_LEAF_NOT_YET_VALID, Entity.OEM_ROOT, "not valid at validation time"),
        (Entity.SECC_LEAF_WRONG_ROOT, Entity.V2G_ROOT, "candidates exhausted"),
        (Entity.VEHICLE_LEAF_WRONG_ROOT, Entity.OEM_ROOT, "candidates exhausted"),
    ],
)
def test_negative_variants_fail_verification_for_their_reason(
    pki: PkiFolder, leaf: Entity, trusted_root: Entity, message: str
) -> None:
    chain = pki.chain(leaf)
    now = dt.datetime.now(dt.UTC)
    verifier = (
        verification.PolicyBuilder()
        .store(verification.Store([pki.certificate(trusted_root)]))
        .time(now)
        .extension_policies(
            ca_policy=verification.ExtensionPolicy.webpki_defaults_ca(),
            ee_policy=verification.ExtensionPolicy.permit_all(),
        )
        .build_client_verifier()
    )
    with pytest.raises(verification.VerificationError, match=message):
        verifier.verify(chain[0], list(chain[1:]))
    cert = chain[0]
    if "EXPIRED" in leaf.name:
        assert cert.not_valid_after_utc < now
    elif "NOT_YET" in leaf.name:
        assert cert.not_valid_before_utc > now
        # and it would be fine once its time comes: validity is the only defect
        later = cert.not_valid_before_utc + dt.timedelta(days=1)
        assert _verifier(pki, leaf, later).verify(cert, list(chain[1:]))


@pytest.mark.parametrize("leaf", [Entity.SECC_LEAF_WRONG_CURVE, Entity.VEHICLE_LEAF_WRONG_CURVE])
def test_wrong_curve_leaves_differ_only_in_their_key_type(pki: PkiFolder, leaf: Entity) -> None:
    chain = pki.chain(leaf)
    verified = _verifier(pki, leaf, dt.datetime.now(dt.UTC)).verify(chain[0], list(chain[1:]))
    assert len(verified.chain) == 4  # a valid chain ...
    assert Curve.of_key(chain[0].public_key()) is Curve.SECP256R1  # ... with a P-256 leaf key
    assert all(Curve.of_key(c.public_key()) is Curve.SECP521R1 for c in chain[1:])


# --- the profile ----------------------------------------------------------------------------------


def test_example_profile_spells_out_the_built_in_defaults() -> None:
    assert PkiProfile.load(REPO / "fixtures" / "pki" / "profile.toml") == PkiProfile()


def test_profile_overrides_reach_the_certificates(tmp_path: Path) -> None:
    profile_path = tmp_path / "bench.toml"
    profile_path.write_text(
        '[pki]\norganization = "Lab A"\n'
        '[certificates.secc_leaf]\ncommon_name = "DE*LAB*E42"\nvalid_days = 7\n'
        'extended_key_usage = ["server_auth"]\n'
        '[certificates.vehicle_leaf]\nextended_key_usage = ["client_auth", "1.2.3.4"]\n'
    )
    folder = init_pki(tmp_path / "pki", PkiProfile.load(profile_path))
    secc = folder.certificate(Entity.SECC_LEAF)
    assert secc.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "DE*LAB*E42"
    assert secc.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Lab A"
    assert secc.not_valid_after_utc - secc.not_valid_before_utc == dt.timedelta(days=7)
    assert list(ext_of(secc, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.SERVER_AUTH]
    vehicle = folder.certificate(Entity.VEHICLE_LEAF)
    assert [o.dotted_string for o in ext_of(vehicle, x509.ExtendedKeyUsage)] == [
        ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string,
        "1.2.3.4",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[pki]\ncurve = 'brainpool'\n", "pki.curve: 'brainpool' is not one of"),
        ("[pki]\ncolour = 'red'\n", "pki.colour: unknown field"),
        ("[certificates.secc_leaf]\nvalid_days = -1\n", "secc_leaf.valid_days: must be > 0"),
        ("[certificates.secc_leaf]\nfoo = 1\n", "certificates.secc_leaf.foo: unknown field"),
        ("[certificates.nobody]\nca = true\n", "certificates.nobody: 'nobody' is not one of"),
        ("[certificates.secc_leaf]\nissuer = 'vehicle_leaf'\n", "issuer vehicle_leaf is not a CA"),
        ("[certificates.v2g_root]\nissuer = 'cpo_sub_ca1'\n", "issuer cycle"),
        ("[certificates.secc_leaf]\nkey_usage = ['fly']\n", "'fly' is not one of"),
        ("[certificates.secc_leaf]\nextended_key_usage = ['x']\n", "neither server_auth"),
        ("[pki]\nwrong_curve = 'secp521r1'\n", "wrong_curve must differ"),
        ("not toml at all [", "not valid TOML"),
    ],
)
def test_bad_profiles_are_named_with_file_and_field(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PkiError, match=message) as raised:
        PkiProfile.load(path)
    assert str(path) in str(raised.value)


def test_another_curve_for_the_whole_pki(tmp_path: Path) -> None:
    profile = PkiProfile().with_curve(Curve.SECP256R1)
    assert profile.wrong_curve is Curve.SECP521R1  # the wrong-curve variants stay wrong
    folder = init_pki(tmp_path / "pki", profile)
    secc = folder.certificate(Entity.SECC_LEAF)
    assert Curve.of_key(secc.public_key()) is Curve.SECP256R1
    assert secc.signature_hash_algorithm is not None
    assert secc.signature_hash_algorithm.name == "sha256"
    ed = init_pki(tmp_path / "ed448", PkiProfile().with_curve(Curve.ED448))
    leaf = ed.certificate(Entity.VEHICLE_LEAF)
    assert Curve.of_key(leaf.public_key()) is Curve.ED448
    leaf.verify_directly_issued_by(ed.chain(Entity.VEHICLE_LEAF)[1])


# --- the folder: refusing, replacing --------------------------------------------------------------


def test_init_refuses_a_non_empty_folder_and_force_replaces_only_its_own(tmp_path: Path) -> None:
    target = tmp_path / "pki"
    first = init_pki(target)
    old = first.certificate(Entity.SECC_LEAF)
    (target / "notes.txt").write_text("mine")
    with pytest.raises(PkiError, match="not empty"):
        init_pki(target)
    second = init_pki(target, force=True)
    assert second.certificate(Entity.SECC_LEAF) != old
    assert (target / "notes.txt").read_text() == "mine"


def test_init_refuses_a_symlinked_folder(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(PkiError, match="not a directory"):
        init_pki(link)
    assert list(real.iterdir()) == []


def test_cli_init_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "cli"
    assert pki_main(["init", str(target), "--curve", "secp384r1"]) == 0
    out = capsys.readouterr().out
    assert f"{len(Entity)} certificates, curve secp384r1" in out
    assert f"PKI_PATH={target / 'josev'}" in out
    cert = PkiFolder(target).certificate(Entity.V2G_ROOT)
    assert Curve.of_key(cert.public_key()) is Curve.SECP384R1
    assert pki_main(["init", str(target)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert pki_main(["init", str(target), "--force"]) == 0
    assert pki_main(["init", str(tmp_path / "x"), "--profile", str(tmp_path / "none.toml")]) == 2


# --- Josev's folder ---------------------------------------------------------------------------------


def test_josev_layout_has_every_file_its_security_module_names(pki: PkiFolder) -> None:
    folder = pki.josev_pki_path / "iso15118_2"
    assert folder == pki.directory / JOSEV_SUBDIR
    for entity, stem in JOSEV_STEMS.items():
        assert (folder / "certs" / f"{stem}Cert.der").read_bytes() == pki.certificate(
            entity
        ).public_bytes(serialization.Encoding.DER)
        assert (folder / "certs" / f"{stem}Cert.pem").exists()
        assert _mode(folder / "private_keys" / f"{stem}.key") == 0o600
    for name, leaf in JOSEV_CHAINS.items():
        chain = x509.load_pem_x509_certificates((folder / "certs" / name).read_bytes())
        assert tuple(chain) == pki.chain(leaf)
    password = (folder / "private_keys" / "seccLeafPassword.txt").read_text().strip()
    assert len(password) >= 16
    for name in JOSEV_PASSWORD_FILES:
        assert (folder / "private_keys" / name).read_text().strip() == password
    encrypted = (folder / "private_keys" / "seccLeaf.key").read_bytes()
    assert b"ENCRYPTED" in encrypted
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(encrypted, None)
    key = serialization.load_pem_private_key(encrypted, password.encode())
    assert key.public_key() == pki.certificate(Entity.SECC_LEAF).public_key()


def test_a_josev_style_secc_accepts_our_evcc(pki: PkiFolder) -> None:
    """A standard-library server set up the way Josev's get_ssl_context(server_side=True) does
    with ENABLE_TLS_1_3 (chain, password-protected key, OEM root, CERT_REQUIRED, P-256 key
    exchange), reading only the josev/ folder, completes a handshake with our EVCC."""
    folder = pki.josev_pki_path / "iso15118_2"
    password = (folder / "private_keys" / "seccLeafPassword.txt").read_text().strip()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(
        folder / "certs" / "cpoCertChain.pem",
        folder / "private_keys" / "seccLeaf.key",
        password=password.encode(),
    )
    context.load_verify_locations(cafile=folder / "certs" / "oemRootCACert.pem")
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_ecdh_curve("prime256v1")
    pipe = MemoryPipe()
    peer = StdlibPeer(pipe.secc, context, server_side=True)
    lines: list[str] = []
    client = attach(
        TlsContext(evcc_config(pki, Entity.OEM_PROV_LEAF, key_log=lines.append)), pipe.evcc
    )
    assert client.link is not None
    client.link.send(b"supportedAppProtocolReq")
    pipe.run()
    assert peer.error is None and peer.established
    assert peer.received == b"supportedAppProtocolReq"
    assert client.session is not None
    if client.session.group is not None:  # reported from pyOpenSSL 26 on
        assert client.session.group == "secp256r1"
    # P-256 only on the server: our first key share is refused with a HelloRetryRequest ...
    records, _ = parse_records(pipe.stream("secc"))
    first = parse_server_hello(next(iter_handshake_messages(records)).body)
    assert first.is_hello_retry_request
    # ... which the decoder follows too
    _, records = decode_streams(KeyLog.parse("\n".join(lines)), *map(pipe.stream, ("evcc", "secc")))
    assert b"supportedAppProtocolReq" in b"".join(r.data for r in records)
