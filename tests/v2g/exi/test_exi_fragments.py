"""EXI fragments (EXI 8.5.2) of the elements -20 signs: SignedInfo over the xmldsig grammar,
and the Id-carrying elements over the CommonMessages grammar."""

from __future__ import annotations

from typing import Any

import pytest

from rig.v2g import exi
from rig.v2g.exi import common, lazy, xmldsig

DSIG = "http://www.w3.org/2000/09/xmldsig#"


def signed_info() -> Any:
    return xmldsig.SignedInfo(
        CanonicalizationMethod=xmldsig.CanonicalizationMethodType(
            Algorithm="http://www.w3.org/TR/canonical-exi/"
        ),
        SignatureMethod=xmldsig.SignatureMethodType(
            Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
        ),
        Reference=[
            xmldsig.ReferenceType(
                URI="#ID1",
                Transforms=xmldsig.TransformsType(
                    Transform=[
                        xmldsig.TransformType(Algorithm="http://www.w3.org/TR/canonical-exi/")
                    ]
                ),
                DigestMethod=xmldsig.DigestMethodType(
                    Algorithm="http://www.w3.org/2001/04/xmlenc#sha512"
                ),
                DigestValue=bytes(range(64)),
            )
        ],
    )


def bits(data: bytes) -> str:
    return format(int.from_bytes(data, "big"), f"0{len(data) * 8}b")


def test_signed_info_fragment_uses_the_xmldsig_grammar() -> None:
    data = exi.encode_fragment(signed_info())
    frags = lazy.module_globals("xmldsig")["FRAGMENTS"]
    code = [(n, u) for n, u, _c in frags].index(("SignedInfo", DSIG))
    assert data[0] == 0x80
    assert int(bits(data)[8:14], 2) == code  # 6-bit SE(SignedInfo)
    back = exi.decode_fragment("xmldsig", data)
    assert back.name == "SignedInfo"
    assert back.value == signed_info()


def test_signed_info_fragment_over_the_common_grammar_when_asked() -> None:
    data = exi.encode_fragment(signed_info(), ns="common")
    assert int(bits(data)[8:17], 2) == 230  # 9-bit code, as libcbv2g's exiFragment
    assert exi.decode_fragment("common", data).value == signed_info()


def test_local_element_fragment_ends_with_ed() -> None:
    mode = common.PnC_AReqAuthorizationModeType(
        Id="ID1",
        GenChallenge=bytes(range(16)),
        ContractCertificateChain=common.ContractCertificateChainType(
            Certificate=b"\x30\x82" + bytes(20),
            SubCertificates=common.SubCertificatesType(Certificate=[b"\x30\x81" + bytes(10)]),
        ),
    )
    data = exi.encode_fragment(mode, name="PnC_AReqAuthorizationMode")
    frags = [(n, u) for n, u, _c in lazy.module_globals("common")["FRAGMENTS"]]
    assert int(bits(data)[8:17], 2) == frags.index(
        ("PnC_AReqAuthorizationMode", "urn:iso:std:iso:15118:-20:CommonMessages")
    )
    back = exi.decode_fragment("common", data)
    assert (back.name, back.value) == ("PnC_AReqAuthorizationMode", mode)


def test_global_element_fragment() -> None:
    data_ = common.SignedInstallationData(
        Id="ID2",
        ContractCertificateChain=common.ContractCertificateChainType(
            Certificate=b"c", SubCertificates=common.SubCertificatesType(Certificate=[b"s"])
        ),
        ECDHCurve=common.ecdhCurveType.X448,
        DHPublicKey=bytes(133),
        X448_EncryptedPrivateKey=bytes(84),
    )
    data = exi.encode_fragment(data_)
    b = bits(data)
    assert int(b[8:17], 2) == 231
    back = exi.decode_fragment("common", data)
    assert back.name == "SignedInstallationData"
    assert back.value == data_


def test_ambiguous_local_name_needs_the_namespace() -> None:
    receipt = common.ReceiptType(TimeAnchor=0)
    with pytest.raises(exi.EXIEncodeError, match="ambiguous"):
        exi.encode_fragment(receipt, name="Receipt")
    data = exi.encode_fragment(receipt, name="{urn:iso:std:iso:15118:-20:CommonTypes}Receipt")
    assert exi.decode_fragment("common", data).value == receipt


def test_fragment_errors() -> None:
    with pytest.raises(exi.EXIEncodeError, match="say which element"):
        exi.encode_fragment(common.ReceiptType(TimeAnchor=0))
    with pytest.raises(exi.EXIDecodeError):
        exi.decode_fragment("common", b"\x80")
    with pytest.raises(ValueError, match="unknown namespace set"):
        exi.decode_fragment("nope", b"\x80")
