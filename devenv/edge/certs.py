"""The edge's certificates: a CA generated once per stack and a leaf certificate it signs for
the edge's hostname, ``localhost`` and 127.0.0.1, so a client that trusts only that CA
(``devenv env``: ``DEVENV_EDGE_CA``) gets a verified HTTPS connection.

The CA's key never leaves ``.devenv/secrets/`` (0600 in a 0700 folder) and is never logged;
the certificates (public) are in ``.devenv/edge/``. The leaf is made again when its names
change, when it nears its end, or when the CA is new; the CA stays until ``down --volumes``,
so a client that trusts it once keeps trusting the stack's edge.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from devenv.runtime.statedir import StateDir

CA_DAYS = 3650
LEAF_DAYS = 397  # what browsers accept for a server certificate
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class EdgeFiles:
    """Where the edge's keys and certificates live in a stack's state folder."""

    state: StateDir

    @property
    def folder(self) -> Path:
        return self.state.root / "edge"

    @property
    def ca_cert(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def cert(self) -> Path:
        return self.folder / "edge.pem"

    @property
    def ca_key(self) -> Path:
        return self.state.secrets / "edge-ca.key"

    @property
    def key(self) -> Path:
        return self.state.secrets / "edge.key"


def ensure_certificates(files: EdgeFiles, stack: str, hostname: str) -> EdgeFiles:
    """Makes the CA if there is none and a leaf for ``hostname`` unless a valid one exists."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    files.state.ensure()
    files.folder.mkdir(mode=0o755, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    try:
        ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(files.ca_key.read_bytes(), None)
        new_ca = False
    except (FileNotFoundError, ValueError):
        ca_cert, ca_key = _make_ca(files, stack, now)
        new_ca = True
    if new_ca or not _leaf_valid(files, ca_cert, hostname, now):
        _make_leaf(files, ca_cert, ca_key, hostname, now)
    return files


def _names(hostname: str) -> list:
    from cryptography import x509

    names = [x509.DNSName(hostname)] + ([x509.DNSName("localhost")] if hostname != "localhost" else [])
    return [*names, x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]


def _key():
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())  # fast handshakes, small certificates


def _pem_key(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _write_public(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def _make_ca(files: EdgeFiles, stack: str, now: datetime.datetime):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devenv"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"devenv local CA ({stack})")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    files.state.private_file(files.ca_key.name, _pem_key(key))
    _write_public(files.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _leaf_valid(files: EdgeFiles, ca_cert, hostname: str, now: datetime.datetime) -> bool:
    from cryptography import x509

    try:
        leaf = x509.load_pem_x509_certificate(files.cert.read_bytes())
        files.key.stat()
    except (FileNotFoundError, ValueError):
        return False
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        leaf.verify_directly_issued_by(ca_cert)
    except Exception:  # no names, another CA's signature (InvalidSignature), a bad file: make it again
        return False
    return set(names) == set(_names(hostname)) and leaf.not_valid_after_utc - now > RENEW_BEFORE


def _make_leaf(files: EdgeFiles, ca_cert, ca_key, hostname: str, now: datetime.datetime) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = _key()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=LEAF_DAYS))
            .add_extension(x509.SubjectAlternativeName(_names(hostname)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files.state.private_file(files.key.name, _pem_key(key))
    _write_public(files.cert, cert.public_bytes(serialization.Encoding.PEM))


def server_context(files: EdgeFiles):
    """The TLS context the edge's listener serves with (TLS 1.2 and up, as CloudFront's
    default security policy; HTTP/1.1)."""
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    context.set_alpn_protocols(["http/1.1"])
    return context
