"""The rig's test PKI for ISO 15118-20: every chain a -20 session touches, written to one folder.

``rig pki init DIR`` (rig.v2g.pki_cli) calls `init_pki`, which generates, signs and writes:

- V2G root -> CPO sub-CA 1 -> CPO sub-CA 2 -> SECC leaf (the TLS server certificate; CN = EVSEID)
- V2G root -> CPS sub-CA 1 -> CPS sub-CA 2 -> CPS leaf (signs installed contract data)
- OEM root -> OEM sub-CA 1 -> OEM sub-CA 2 -> OEM provisioning leaf and vehicle leaf (the EV's TLS
  client certificate in -20)
- MO root -> MO sub-CA 1 -> MO sub-CA 2 -> contract leaf
- negative variants for tests: expired, not-yet-valid, wrong-root and wrong-curve SECC and vehicle
  leaves (a separate untrusted root with its own two sub-CAs stands for "wrong root").

Layout of DIR (directories 0700, private keys and passwords 0600, created with that mode):

    manifest.json            what was made: subjects, serials, validity, fingerprints (no secrets)
    certs/<entity>.pem|.der  one certificate per `Entity`
    keys/<entity>.key        its private key, PKCS#8 PEM, unencrypted (the folder is the boundary)
    chains/<leaf>.pem        a leaf followed by its sub-CAs (no root), as TLS sends it
    josev/                   the same PKI in the -2 folder layout of the iso15118 package (Josev),
                             whose -20 TLS reads $PKI_PATH/iso15118_2/{certs,private_keys}/

Certificate profile. Public facts come from open implementations' PKI scripts (Josev's
create_certs.sh and configs/*.cnf, EVerest's pki script derived from it): two sub-CAs below each
root with path lengths 1 and 0, critical basic constraints and key usage (keyCertSign + cRLSign on
CAs, digitalSignature + keyAgreement on the SECC and OEM leaves), subject key identifiers, DC=V2G /
CPO / CPS / OEM / MO domain components, and their validity periods (days). -20 itself uses
secp521r1 with ECDSA-SHA-512 (FACTS.md "TLS"). Not confirmed against ISO 15118-20's own profile
(?): the exact CN formats (EVSEID, PCID, EMAID, VIN), the vehicle leaf's key usage and validity,
whether extended key usage is present (no open script sets it; default none), Ed448 as an
alternative. All of these are fields of `PkiProfile`, loadable from TOML (fixtures/pki/profile.toml
documents every field).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import stat
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

PrivateKey = ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed448.Ed448PublicKey

_E = TypeVar("_E", bound=StrEnum)

MANIFEST = "manifest.json"
#: The sub-folders init_pki owns inside DIR (and replaces under --force), with the manifest.
OWNED = ("certs", "keys", "chains", "josev", MANIFEST)
DIR_MODE = 0o700
SECRET_MODE = 0o600
PUBLIC_MODE = 0o644


class PkiError(Exception):
    """A profile, folder or PKI that cannot be used; the message names the file and field."""


class Curve(StrEnum):
    """Key types a test PKI can use. -20 uses secp521r1 (FACTS.md "TLS"); Ed448 (?) is listed
    as -20's alternative; the others exist for negative tests and -2 style benches."""

    SECP256R1 = "secp256r1"
    SECP384R1 = "secp384r1"
    SECP521R1 = "secp521r1"
    ED448 = "ed448"

    def generate(self) -> PrivateKey:
        if self is Curve.ED448:
            return ed448.Ed448PrivateKey.generate()
        return ec.generate_private_key(_EC_CURVES[self]())

    @property
    def signature_hash(self) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None:
        """The hash an issuer with a key of this type signs with (ECDSA-SHA-512 on P-521 as -20
        uses; Ed448 hashes internally)."""
        match self:
            case Curve.SECP256R1:
                return hashes.SHA256()
            case Curve.SECP384R1:
                return hashes.SHA384()
            case Curve.SECP521R1:
                return hashes.SHA512()
            case Curve.ED448:
                return None

    @classmethod
    def of_key(cls, key: object) -> Curve | None:
        """The curve of a public or private key, or None for any other key type."""
        if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
            try:
                return cls(key.curve.name)
            except ValueError:
                return None
        if isinstance(key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
            return cls.ED448
        return None


_EC_CURVES: dict[Curve, type[ec.EllipticCurve]] = {
    Curve.SECP256R1: ec.SECP256R1,
    Curve.SECP384R1: ec.SECP384R1,
    Curve.SECP521R1: ec.SECP521R1,
}


class KeyUsageBit(StrEnum):
    """The X.509 key usage bits, spelled as cryptography's KeyUsage fields."""

    DIGITAL_SIGNATURE = "digital_signature"
    CONTENT_COMMITMENT = "content_commitment"  # nonRepudiation
    KEY_ENCIPHERMENT = "key_encipherment"
    DATA_ENCIPHERMENT = "data_encipherment"
    KEY_AGREEMENT = "key_agreement"
    KEY_CERT_SIGN = "key_cert_sign"
    CRL_SIGN = "crl_sign"


_EKU_NAMES = {
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
}


class Entity(StrEnum):
    """Every certificate of the test PKI; the value is its file stem."""

    V2G_ROOT = "v2g_root"
    CPO_SUB_CA1 = "cpo_sub_ca1"
    CPO_SUB_CA2 = "cpo_sub_ca2"
    SECC_LEAF = "secc_leaf"
    CPS_SUB_CA1 = "cps_sub_ca1"
    CPS_SUB_CA2 = "cps_sub_ca2"
    CPS_LEAF = "cps_leaf"
    OEM_ROOT = "oem_root"
    OEM_SUB_CA1 = "oem_sub_ca1"
    OEM_SUB_CA2 = "oem_sub_ca2"
    OEM_PROV_LEAF = "oem_prov_leaf"
    VEHICLE_LEAF = "vehicle_leaf"
    MO_ROOT = "mo_root"
    MO_SUB_CA1 = "mo_sub_ca1"
    MO_SUB_CA2 = "mo_sub_ca2"
    CONTRACT_LEAF = "contract_leaf"
    # negative variants (tests): a root nobody trusts, and leaves that must be refused
    WRONG_ROOT = "wrong_root"
    WRONG_SUB_CA1 = "wrong_sub_ca1"
    WRONG_SUB_CA2 = "wrong_sub_ca2"
    SECC_LEAF_EXPIRED = "secc_leaf_expired"
    SECC_LEAF_NOT_YET_VALID = "secc_leaf_not_yet_valid"
    SECC_LEAF_WRONG_ROOT = "secc_leaf_wrong_root"
    SECC_LEAF_WRONG_CURVE = "secc_leaf_wrong_curve"
    VEHICLE_LEAF_EXPIRED = "vehicle_leaf_expired"
    VEHICLE_LEAF_NOT_YET_VALID = "vehicle_leaf_not_yet_valid"
    VEHICLE_LEAF_WRONG_ROOT = "vehicle_leaf_wrong_root"
    VEHICLE_LEAF_WRONG_CURVE = "vehicle_leaf_wrong_curve"


#: Entities whose curve is the profile's `wrong_curve` rather than its `curve`.
WRONG_CURVE_ENTITIES = frozenset({Entity.SECC_LEAF_WRONG_CURVE, Entity.VEHICLE_LEAF_WRONG_CURVE})


@dataclass(frozen=True, slots=True)
class CertificateProfile:
    """How one certificate is made. Validity starts `valid_from_days` from generation time
    (negative: in the past) and lasts `valid_days`."""

    issuer: Entity | None  # None: self-signed (a root)
    common_name: str
    domain_component: str
    ca: bool
    key_usage: frozenset[KeyUsageBit]
    valid_days: float
    path_length: int | None = None
    # One hour back (rig's own choice): a bench PC's clock a little behind the DUT's still accepts.
    valid_from_days: float = -1 / 24
    extended_key_usage: tuple[str, ...] = ()  # "server_auth", "client_auth" or dotted OIDs
    organization: str | None = None  # None: the PKI's organization
    curve: Curve | None = None  # None: the PKI's curve (or wrong_curve for WRONG_CURVE_ENTITIES)


_CA = frozenset({KeyUsageBit.KEY_CERT_SIGN, KeyUsageBit.CRL_SIGN})
_TLS_LEAF = frozenset({KeyUsageBit.DIGITAL_SIGNATURE, KeyUsageBit.KEY_AGREEMENT})


def _root(cn: str, dc: str, days: float = 3650) -> CertificateProfile:
    return CertificateProfile(None, cn, dc, ca=True, key_usage=_CA, valid_days=days)


def _sub(issuer: Entity, cn: str, dc: str, path_length: int, days: float) -> CertificateProfile:
    return CertificateProfile(
        issuer, cn, dc, ca=True, key_usage=_CA, valid_days=days, path_length=path_length
    )


def _leaf(
    issuer: Entity, cn: str, dc: str, days: float, usage: frozenset[KeyUsageBit] = _TLS_LEAF
) -> CertificateProfile:
    return CertificateProfile(issuer, cn, dc, ca=False, key_usage=usage, valid_days=days)


# Validity days, names and key usages as in Josev's create_certs.sh / configs (see module doc).
_SECC = _leaf(Entity.CPO_SUB_CA2, "DE*V2H*E0001*1", "CPO", 60)  # CN = EVSEID (format ?)
_VEHICLE = _leaf(Entity.OEM_SUB_CA2, "WMIV1234567890ABCDEX", "OEM", 1460)  # CN (?), days (?)

DEFAULT_CERTIFICATES: Mapping[Entity, CertificateProfile] = MappingProxyType(
    {
        Entity.V2G_ROOT: _root("V2GRootCA", "V2G"),
        Entity.CPO_SUB_CA1: _sub(Entity.V2G_ROOT, "CPOSubCA1", "V2G", 1, 1460),
        Entity.CPO_SUB_CA2: _sub(Entity.CPO_SUB_CA1, "CPOSubCA2", "V2G", 0, 365),
        Entity.SECC_LEAF: _SECC,
        Entity.CPS_SUB_CA1: _sub(Entity.V2G_ROOT, "ProvSubCA1", "CPS", 1, 1460),
        Entity.CPS_SUB_CA2: _sub(Entity.CPS_SUB_CA1, "ProvSubCA2", "CPS", 0, 730),
        Entity.CPS_LEAF: _leaf(
            Entity.CPS_SUB_CA2, "CPS Leaf", "CPS", 90, frozenset({KeyUsageBit.DIGITAL_SIGNATURE})
        ),
        Entity.OEM_ROOT: _root("OEMRootCA", "OEM"),
        Entity.OEM_SUB_CA1: _sub(Entity.OEM_ROOT, "OEMSubCA1", "OEM", 1, 1460),
        Entity.OEM_SUB_CA2: _sub(Entity.OEM_SUB_CA1, "OEMSubCA2", "OEM", 0, 1460),
        # CN = PCID, the provisioning certificate ID (format ?)
        Entity.OEM_PROV_LEAF: _leaf(Entity.OEM_SUB_CA2, "V2HRIGPCID000001", "OEM", 1460),
        Entity.VEHICLE_LEAF: _VEHICLE,
        Entity.MO_ROOT: _root("MORootCA", "MO"),
        Entity.MO_SUB_CA1: _sub(Entity.MO_ROOT, "MOSubCA1", "MO", 1, 1460),
        Entity.MO_SUB_CA2: CertificateProfile(
            Entity.MO_SUB_CA1,
            "MOSubCA2",
            "MO",
            ca=True,
            # Josev's MO sub-CA 2 also signs (digitalSignature, nonRepudiation)
            key_usage=_CA | {KeyUsageBit.DIGITAL_SIGNATURE, KeyUsageBit.CONTENT_COMMITMENT},
            valid_days=1460,
            path_length=0,
        ),
        # CN = EMAID (format ?)
        Entity.CONTRACT_LEAF: _leaf(
            Entity.MO_SUB_CA2,
            "DEV2HC1234567890",
            "MO",
            730,
            frozenset(
                {
                    KeyUsageBit.DIGITAL_SIGNATURE,
                    KeyUsageBit.CONTENT_COMMITMENT,
                    KeyUsageBit.KEY_ENCIPHERMENT,
                    KeyUsageBit.KEY_AGREEMENT,
                }
            ),
        ),
        Entity.WRONG_ROOT: _root("WrongRootCA", "V2G"),
        Entity.WRONG_SUB_CA1: _sub(Entity.WRONG_ROOT, "WrongSubCA1", "V2G", 1, 1460),
        Entity.WRONG_SUB_CA2: _sub(Entity.WRONG_SUB_CA1, "WrongSubCA2", "V2G", 0, 365),
        # Expired a day ago; valid from in a month: clear of any clock skew between bench PCs.
        Entity.SECC_LEAF_EXPIRED: replace(_SECC, valid_from_days=-31, valid_days=30),
        Entity.SECC_LEAF_NOT_YET_VALID: replace(_SECC, valid_from_days=30, valid_days=60),
        Entity.SECC_LEAF_WRONG_ROOT: replace(_SECC, issuer=Entity.WRONG_SUB_CA2),
        Entity.SECC_LEAF_WRONG_CURVE: _SECC,
        Entity.VEHICLE_LEAF_EXPIRED: replace(_VEHICLE, valid_from_days=-31, valid_days=30),
        Entity.VEHICLE_LEAF_NOT_YET_VALID: replace(_VEHICLE, valid_from_days=30, valid_days=60),
        Entity.VEHICLE_LEAF_WRONG_ROOT: replace(_VEHICLE, issuer=Entity.WRONG_SUB_CA2),
        Entity.VEHICLE_LEAF_WRONG_CURVE: _VEHICLE,
    }
)


@dataclass(frozen=True, slots=True)
class PkiProfile:
    """Everything `generate` needs: the key type, subject defaults and one CertificateProfile per
    Entity. `wrong_curve` is the key type of the wrong-curve variants and must differ from
    `curve`."""

    curve: Curve = Curve.SECP521R1
    wrong_curve: Curve = Curve.SECP256R1
    organization: str = "V2H Rig Test PKI"
    country: str = "DE"
    certificates: Mapping[Entity, CertificateProfile] = field(
        default_factory=lambda: DEFAULT_CERTIFICATES
    )

    def __post_init__(self) -> None:
        if self.wrong_curve is self.curve:
            raise PkiError(f"wrong_curve must differ from curve (both {self.curve})")
        missing = [e.value for e in Entity if e not in self.certificates]
        if missing:
            raise PkiError(f"profile has no certificate entry for {', '.join(missing)}")
        for entity, cert in self.certificates.items():
            if cert.issuer is None:
                continue
            issuer = self.certificates[cert.issuer]
            if not issuer.ca:
                raise PkiError(f"{entity}: issuer {cert.issuer} is not a CA (ca = false)")
        _issue_order(self.certificates)  # refuses cycles

    def with_curve(self, curve: Curve) -> PkiProfile:
        """The same profile on another key type (`rig pki init --curve`); the wrong-curve
        variants stay on secp256r1 unless that is the new curve (then secp521r1)."""
        wrong = self.wrong_curve
        if wrong is curve:
            wrong = Curve.SECP521R1 if curve is Curve.SECP256R1 else Curve.SECP256R1
        return replace(self, curve=curve, wrong_curve=wrong)

    def curve_of(self, entity: Entity) -> Curve:
        own = self.certificates[entity].curve
        if own is not None:
            return own
        return self.wrong_curve if entity in WRONG_CURVE_ENTITIES else self.curve

    @classmethod
    def load(cls, path: Path) -> PkiProfile:
        """Read a TOML profile; every key not given keeps the built-in default."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise PkiError(f"{path}: cannot read: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise PkiError(f"{path}: not valid TOML: {exc}") from exc
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "profile") -> PkiProfile:
        top = dict(data)
        pki = _table(top.pop("pki", {}), f"{source}: [pki]")
        certs = _table(top.pop("certificates", {}), f"{source}: [certificates]")
        if top:
            raise PkiError(f"{source}: unknown table(s) {', '.join(sorted(top))}")
        kwargs: dict[str, Any] = {}
        for key, value in pki.items():
            where = f"{source}: pki.{key}"
            if key in ("curve", "wrong_curve"):
                kwargs[key] = _enum(Curve, value, where)
            elif key in ("organization", "country"):
                kwargs[key] = _str(value, where)
            else:
                raise PkiError(f"{where}: unknown field")
        merged = dict(DEFAULT_CERTIFICATES)
        for name, table in certs.items():
            entity = _enum(Entity, name, f"{source}: certificates.{name}")
            merged[entity] = _certificate_profile(
                merged[entity], _table(table, f"{source}: certificates.{name}"), source, name
            )
        try:
            return cls(certificates=MappingProxyType(merged), **kwargs)
        except PkiError as exc:
            raise PkiError(f"{source}: {exc}") from exc


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PkiError(f"{where}: expected a table")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise PkiError(f"{where}: expected a non-empty string")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PkiError(f"{where}: expected a number")
    return float(value)


def _enum(kind: type[_E], value: object, where: str) -> _E:
    try:
        return kind(_str(value, where))
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise PkiError(f"{where}: {value!r} is not one of {allowed}") from None


def _str_list(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PkiError(f"{where}: expected a list of strings")
    return list(value)


def _certificate_profile(
    base: CertificateProfile, table: Mapping[str, Any], source: str, name: str
) -> CertificateProfile:
    changes: dict[str, Any] = {}
    known = {f.name for f in fields(CertificateProfile)}
    for key, value in table.items():
        where = f"{source}: certificates.{name}.{key}"
        if key not in known:
            raise PkiError(f"{where}: unknown field")
        match key:
            case "issuer":
                changes[key] = None if value == "self" else _enum(Entity, value, where)
            case "common_name" | "domain_component" | "organization":
                changes[key] = _str(value, where)
            case "ca":
                if not isinstance(value, bool):
                    raise PkiError(f"{where}: expected true or false")
                changes[key] = value
            case "path_length":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise PkiError(f"{where}: expected an integer >= 0")
                changes[key] = value
            case "valid_days":
                days = _number(value, where)
                if days <= 0:
                    raise PkiError(f"{where}: must be > 0")
                changes[key] = days
            case "valid_from_days":
                changes[key] = _number(value, where)
            case "key_usage":
                changes[key] = frozenset(
                    _enum(KeyUsageBit, v, where) for v in _str_list(value, where)
                )
            case "extended_key_usage":
                ekus = _str_list(value, where)
                for eku in ekus:
                    _eku_oid(eku, where)
                changes[key] = tuple(ekus)
            case "curve":
                changes[key] = _enum(Curve, value, where)
    return replace(base, **changes)


def _eku_oid(name: str, where: str = "extended_key_usage") -> ObjectIdentifier:
    if name in _EKU_NAMES:
        return _EKU_NAMES[name]
    try:
        return ObjectIdentifier(name)
    except ValueError:
        raise PkiError(
            f"{where}: {name!r} is neither server_auth, client_auth nor an OID"
        ) from None


def _issue_order(certificates: Mapping[Entity, CertificateProfile]) -> list[Entity]:
    """Entities ordered so that every issuer comes before what it signs."""
    order: list[Entity] = []
    done: set[Entity] = set()
    for start in certificates:
        path: list[Entity] = []
        entity: Entity | None = start
        while entity is not None and entity not in done:
            if entity in path:
                raise PkiError(f"issuer cycle: {' -> '.join([*path, entity])}")
            path.append(entity)
            entity = certificates[entity].issuer
        for e in reversed(path):
            done.add(e)
            order.append(e)
    return order


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key."""

    certificate: x509.Certificate
    key: PrivateKey


def generate(profile: PkiProfile, now: dt.datetime) -> dict[Entity, Issued]:
    """Make every key and certificate of the profile (in memory; `write_pki` stores them).

    `now` is the generation time (aware, UTC) against which validity offsets are taken."""
    if now.tzinfo is None:
        raise PkiError("generate: `now` must be timezone-aware")
    issued: dict[Entity, Issued] = {}
    for entity in _issue_order(profile.certificates):
        cert_profile = profile.certificates[entity]
        key = profile.curve_of(entity).generate()
        subject = _name(profile, cert_profile)
        if cert_profile.issuer is None:
            issuer_name, signer, signer_cert = subject, key, None
        else:
            parent = issued[cert_profile.issuer]
            issuer_name, signer, signer_cert = parent.certificate.subject, parent.key, parent
        start = now + dt.timedelta(days=cert_profile.valid_from_days)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            # 8 random bytes with the top bit clear: positive, as EVerest's script makes them.
            .serial_number(int.from_bytes(secrets.token_bytes(8), "big") >> 1 or 1)
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=cert_profile.valid_days))
            .add_extension(
                x509.BasicConstraints(
                    ca=cert_profile.ca,
                    path_length=cert_profile.path_length if cert_profile.ca else None,
                ),
                critical=True,
            )
            .add_extension(_key_usage(cert_profile.key_usage), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )
        if signer_cert is not None:
            ski = signer_cert.certificate.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier
            ).value
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), False
            )
        if cert_profile.extended_key_usage:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([_eku_oid(e) for e in cert_profile.extended_key_usage]),
                critical=False,
            )
        signer_curve = Curve.of_key(signer)
        assert signer_curve is not None  # every key we make is one of Curve's
        certificate = builder.sign(signer, signer_curve.signature_hash)
        issued[entity] = Issued(certificate, key)
    return issued


def _name(profile: PkiProfile, cert: CertificateProfile) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, cert.common_name),
            x509.NameAttribute(
                NameOID.ORGANIZATION_NAME, cert.organization or profile.organization
            ),
            x509.NameAttribute(NameOID.COUNTRY_NAME, profile.country),
            x509.NameAttribute(NameOID.DOMAIN_COMPONENT, cert.domain_component),
        ]
    )


def _key_usage(bits: frozenset[KeyUsageBit]) -> x509.KeyUsage:
    on = {bit.value: True for bit in bits}
    return x509.KeyUsage(
        digital_signature=on.get("digital_signature", False),
        content_commitment=on.get("content_commitment", False),
        key_encipherment=on.get("key_encipherment", False),
        data_encipherment=on.get("data_encipherment", False),
        key_agreement=on.get("key_agreement", False),
        key_cert_sign=on.get("key_cert_sign", False),
        crl_sign=on.get("crl_sign", False),
        encipher_only=False,
        decipher_only=False,
    )


# --- the folder ------------------------------------------------------------------------------

#: Josev's file stems (iso15118.shared.security CertPath / KeyPath, package 0.31.2): certificates
#: are <stem>Cert.der/.pem in iso15118_2/certs/, keys <stem>.key in iso15118_2/private_keys/.
JOSEV_STEMS: Mapping[Entity, str] = MappingProxyType(
    {
        Entity.V2G_ROOT: "v2gRootCA",
        Entity.CPO_SUB_CA1: "cpoSubCA1",
        Entity.CPO_SUB_CA2: "cpoSubCA2",
        Entity.SECC_LEAF: "seccLeaf",
        Entity.CPS_SUB_CA1: "cpsSubCA1",
        Entity.CPS_SUB_CA2: "cpsSubCA2",
        Entity.CPS_LEAF: "cpsLeaf",
        Entity.OEM_ROOT: "oemRootCA",
        Entity.OEM_SUB_CA1: "oemSubCA1",
        Entity.OEM_SUB_CA2: "oemSubCA2",
        Entity.OEM_PROV_LEAF: "oemLeaf",
        Entity.MO_ROOT: "moRootCA",
        Entity.MO_SUB_CA1: "moSubCA1",
        Entity.MO_SUB_CA2: "moSubCA2",
        Entity.CONTRACT_LEAF: "contractLeaf",
    }
)
#: Josev's chain files (leaf + sub-CA 2 + sub-CA 1), what its TLS contexts load_cert_chain().
JOSEV_CHAINS: Mapping[str, Entity] = MappingProxyType(
    {"cpoCertChain.pem": Entity.SECC_LEAF, "oemCertChain.pem": Entity.OEM_PROV_LEAF}
)
#: Josev's key password files (KeyPasswordPath), one line each.
JOSEV_PASSWORD_FILES = (
    "seccLeafPassword.txt",
    "oemLeafPassword.txt",
    "contractLeafPassword.txt",
    "cpsLeafPassword.txt",
    "moSubCA2LeafPassword.txt",
)
JOSEV_SUBDIR = "josev/iso15118_2"


def _mkdir_private(path: Path) -> None:
    """Create `path` as a 0700 directory (born with that mode), or tighten an existing one."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        if path.is_symlink() or not path.is_dir():
            raise PkiError(f"{path}: exists and is not a directory") from None
    os.chmod(path, DIR_MODE)


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write a new file, born with `mode` (O_EXCL: never through an existing file or link)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # the umask may only have removed bits; make it exact
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def chain_of(entity: Entity, profile: PkiProfile) -> list[Entity]:
    """`entity` and its issuers up to, not including, the root: the chain a TLS peer sends."""
    chain = [entity]
    issuer = profile.certificates[entity].issuer
    while issuer is not None and profile.certificates[issuer].issuer is not None:
        chain.append(issuer)
        issuer = profile.certificates[issuer].issuer
    return chain


def root_of(entity: Entity, profile: PkiProfile) -> Entity:
    while (issuer := profile.certificates[entity].issuer) is not None:
        entity = issuer
    return entity


def write_pki(
    directory: Path,
    profile: PkiProfile,
    issued: Mapping[Entity, Issued],
    *,
    force: bool = False,
    now: dt.datetime,
) -> None:
    """Store a generated PKI in `directory` (see the module doc for the layout and modes).

    Without `force` the folder must be empty or absent; with it, only what init_pki owns (OWNED)
    is replaced, never anything else in the folder."""
    directory = Path(directory)
    if directory.exists() and not directory.is_symlink() and directory.is_dir():
        present = [p.name for p in directory.iterdir()]
        if present and not force:
            raise PkiError(f"{directory}: not empty (use --force to replace the PKI in it)")
        for name in OWNED:
            target = directory / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
    _mkdir_private(directory)
    for sub in ("certs", "keys", "chains", "josev", JOSEV_SUBDIR, f"{JOSEV_SUBDIR}/certs"):
        _mkdir_private(directory / sub)
    _mkdir_private(directory / JOSEV_SUBDIR / "private_keys")

    entries: dict[str, Any] = {}
    for entity, item in issued.items():
        cert = item.certificate
        _write_file(directory / "certs" / f"{entity}.pem", _pem(cert), PUBLIC_MODE)
        _write_file(directory / "certs" / f"{entity}.der", _der(cert), PUBLIC_MODE)
        key_pem = item.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_file(directory / "keys" / f"{entity}.key", key_pem, SECRET_MODE)
        entry: dict[str, Any] = {
            "certificate": f"certs/{entity}.pem",
            "key": f"keys/{entity}.key",
            "issuer": profile.certificates[entity].issuer or "self",
            "subject": cert.subject.rfc4514_string(),
            "serial": format(cert.serial_number, "x"),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "curve": profile.curve_of(entity).value,
            "sha256": cert.fingerprint(hashes.SHA256()).hex(),
        }
        if not profile.certificates[entity].ca:
            chain = chain_of(entity, profile)
            data = b"".join(_pem(issued[e].certificate) for e in chain)
            _write_file(directory / "chains" / f"{entity}.pem", data, PUBLIC_MODE)
            entry["chain"] = f"chains/{entity}.pem"
            entry["root"] = root_of(entity, profile).value
        entries[entity.value] = entry

    _write_josev(directory / JOSEV_SUBDIR, profile, issued)
    manifest = {
        "format": 1,
        "generated_at": now.isoformat(),
        "curve": profile.curve.value,
        "wrong_curve": profile.wrong_curve.value,
        "entities": entries,
        "josev": {
            "pki_path": "josev",
            "note": "set PKI_PATH to this folder; key passwords are in the *Password.txt files",
        },
    }
    _write_file(
        directory / MANIFEST,
        (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(),
        PUBLIC_MODE,
    )


def _write_josev(folder: Path, profile: PkiProfile, issued: Mapping[Entity, Issued]) -> None:
    # Josev reads its keys as encrypted PEM with the password from *Password.txt; a fresh random
    # password per PKI, kept beside the keys (0600) exactly where Josev looks for it.
    password = secrets.token_urlsafe(18)
    encryption = serialization.BestAvailableEncryption(password.encode())
    for entity, stem in JOSEV_STEMS.items():
        cert = issued[entity].certificate
        _write_file(folder / "certs" / f"{stem}Cert.der", _der(cert), PUBLIC_MODE)
        _write_file(folder / "certs" / f"{stem}Cert.pem", _pem(cert), PUBLIC_MODE)
        key = issued[entity].key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        _write_file(folder / "private_keys" / f"{stem}.key", key, SECRET_MODE)
    for name, leaf in JOSEV_CHAINS.items():
        data = b"".join(_pem(issued[e].certificate) for e in chain_of(leaf, profile))
        _write_file(folder / "certs" / name, data, PUBLIC_MODE)
    for name in JOSEV_PASSWORD_FILES:
        _write_file(folder / "private_keys" / name, f"{password}\n".encode(), SECRET_MODE)


def init_pki(
    directory: Path,
    profile: PkiProfile | None = None,
    *,
    force: bool = False,
    now: dt.datetime | None = None,
) -> PkiFolder:
    """Generate a complete test PKI and write it to `directory` (``rig pki init``)."""
    profile = profile or PkiProfile()
    # Certificates are judged by wall time (OpenSSL reads the system clock), so the PKI is
    # dated by wall time too, not by a run's virtual clock.
    now = now or dt.datetime.now(dt.UTC)
    issued = generate(profile, now)
    write_pki(directory, profile, issued, force=force, now=now)
    return PkiFolder(directory)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a TLS endpoint presents: its chain (leaf first, then sub-CAs) and the leaf's key."""

    chain: tuple[x509.Certificate, ...]
    key: PrivateKey


class PkiFolder:
    """A test PKI written by init_pki, read back by entity."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        try:
            self._manifest = json.loads((self.directory / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PkiError(f"{self.directory}: no readable {MANIFEST} ({exc})") from exc
        self._entities: Mapping[str, Any] = self._manifest.get("entities", {})

    def _entry(self, entity: Entity) -> Mapping[str, Any]:
        try:
            entry: Mapping[str, Any] = self._entities[entity.value]
        except KeyError:
            raise PkiError(f"{self.directory}: {MANIFEST} has no {entity}") from None
        return entry

    def path(self, entity: Entity, what: str = "certificate") -> Path:
        """certs/…, keys/… or chains/… of an entity ("certificate", "key" or "chain")."""
        try:
            return self.directory / str(self._entry(entity)[what])
        except KeyError:
            raise PkiError(f"{entity} has no {what} in {self.directory}") from None

    def certificate(self, entity: Entity) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.path(entity).read_bytes())

    def private_key(self, entity: Entity) -> PrivateKey:
        key = serialization.load_pem_private_key(self.path(entity, "key").read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey | ed448.Ed448PrivateKey):
            raise PkiError(f"{entity}: unexpected key type {type(key).__name__}")
        return key

    def chain(self, leaf: Entity) -> tuple[x509.Certificate, ...]:
        """The leaf followed by its sub-CAs (no root), as a TLS peer presents it."""
        return tuple(x509.load_pem_x509_certificates(self.path(leaf, "chain").read_bytes()))

    def root(self, entity: Entity) -> x509.Certificate:
        """The self-signed root above a leaf."""
        root = self._entry(entity).get("root")
        if root is None:
            raise PkiError(f"{entity} is a CA; ask for its root by name")
        return self.certificate(Entity(root))

    def credentials(self, leaf: Entity) -> Credentials:
        return Credentials(self.chain(leaf), self.private_key(leaf))

    @property
    def josev_pki_path(self) -> Path:
        """What to set Josev's PKI_PATH to."""
        return self.directory / "josev"

    def files(self) -> Iterator[Path]:
        """Every file of the PKI (for mode checks and audits)."""
        for path in sorted(self.directory.rglob("*")):
            if path.is_file():
                yield path

    @staticmethod
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.lstat().st_mode)
