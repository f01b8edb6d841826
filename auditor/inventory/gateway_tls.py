"""TLS handshakes with the gateway's team listener, one protocol version at a time, and the
expiry date of the certificate it serves.

Versions below TLS 1.2 are offered with OpenSSL's security level 0, so a refusal is the
server's (a protocol_version alert), not this client's: a version this client cannot offer
at all is reported as untestable, never as refused.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from datetime import UTC, datetime

from auditor.inventory.interface import GatewayTls, TlsHandshake

TIMEOUT_S = 5.0
VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
_REFUSALS = ("ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "WRONG_VERSION_NUMBER")


def _context(version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # judging the server's settings, not trusting it
    with warnings.catch_warnings():  # offering the deprecated versions is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def handshake(host: str, port: int, name: str) -> tuple[TlsHandshake, bytes | None]:
    """One handshake offering only `name`; the served certificate (DER) when accepted."""
    try:
        context = _context(VERSIONS[name])
        with (
            socket.create_connection((host, port), TIMEOUT_S) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            return TlsHandshake(name, "accepted", str(tls.version())), tls.getpeercert(True)
    except ssl.SSLError as exc:
        reason = str(exc.reason or exc)
        if any(mark in reason for mark in _REFUSALS):
            return TlsHandshake(name, "refused", reason), None
        return TlsHandshake(name, "untestable", f"{type(exc).__name__}: {reason}"), None
    except (OSError, ValueError) as exc:
        return TlsHandshake(name, "untestable", f"{type(exc).__name__}: {exc}"), None


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at pos."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER element")
    return tag, pos, pos + length


def not_after(der: bytes) -> datetime:
    """The notAfter of an X.509 certificate in DER (RFC 5280 4.1.2.5)."""
    _, start, _ = _tlv(der, 0)  # Certificate
    _, pos, _ = _tlv(der, start)  # tbsCertificate
    tag, _, end = _tlv(der, pos)
    if tag == 0xA0:  # [0] version
        pos = end
    for _ in range(3):  # serialNumber, signature, issuer
        pos = _tlv(der, pos)[2]
    _, validity, _ = _tlv(der, pos)
    before_end = _tlv(der, validity)[2]
    tag, start, end = _tlv(der, before_end)
    text = der[start:end].decode("ascii")
    if tag == 0x17:  # UTCTime, YYMMDDHHMMSSZ: years 50-99 are 19xx
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:
        raise ValueError(f"notAfter has tag {tag:#x}")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=UTC)


def collect(host: str, port: int) -> GatewayTls:
    handshakes: list[TlsHandshake] = []
    served: bytes | None = None
    for name in VERSIONS:
        done, der = handshake(host, port, name)
        handshakes.append(done)
        served = served or der
    if served is None:
        return GatewayTls(tuple(handshakes), None, "no handshake succeeded")
    try:
        expiry = not_after(served).isoformat()
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        return GatewayTls(tuple(handshakes), None, f"unreadable certificate: {exc}")
    return GatewayTls(tuple(handshakes), expiry)
