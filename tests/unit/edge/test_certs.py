"""The stack's CA and the edge's certificate: made once, key files private, the leaf made
again only when its names change."""

from __future__ import annotations

import socket
import ssl
import stat
import threading

from cryptography import x509

from devenv.edge.certs import EdgeFiles, ensure_certificates, server_context
from devenv.runtime.statedir import StateDir


def test_made_once_with_private_keys(tmp_path):
    files = ensure_certificates(EdgeFiles(StateDir(tmp_path / ".devenv")), "demo", "demo.localhost")
    for key in (files.ca_key, files.key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.key.parent.stat().st_mode) == 0o700
    ca, leaf = files.ca_cert.read_bytes(), files.cert.read_bytes()
    ensure_certificates(files, "demo", "demo.localhost")
    assert (files.ca_cert.read_bytes(), files.cert.read_bytes()) == (ca, leaf)
    names = x509.load_pem_x509_certificate(leaf).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert {str(n.value) for n in names.value} == {"demo.localhost", "localhost", "127.0.0.1"}
    assert x509.load_pem_x509_certificate(ca).extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_new_hostname_gets_a_new_leaf_from_the_same_ca(tmp_path):
    files = ensure_certificates(EdgeFiles(StateDir(tmp_path / ".devenv")), "demo", "demo.localhost")
    ca, leaf = files.ca_cert.read_bytes(), files.cert.read_bytes()
    ensure_certificates(files, "demo", "shop.localhost")
    assert files.ca_cert.read_bytes() == ca and files.cert.read_bytes() != leaf
    x509.load_pem_x509_certificate(files.cert.read_bytes()).verify_directly_issued_by(
        x509.load_pem_x509_certificate(ca))


def test_a_handshake_verifies_against_the_ca_for_each_name(tmp_path):
    files = ensure_certificates(EdgeFiles(StateDir(tmp_path / ".devenv")), "demo", "demo.localhost")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = server_context(files)

    def accept(count: int) -> None:
        for _ in range(count):
            conn, _ = listener.accept()
            try:
                with server.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=accept, args=(3,), daemon=True)
    thread.start()
    trust = ssl.create_default_context(cafile=str(files.ca_cert))
    for name in ("demo.localhost", "localhost", "127.0.0.1"):
        with socket.create_connection(("127.0.0.1", port)) as sock, trust.wrap_socket(sock, server_hostname=name) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    thread.join(5)
    listener.close()
