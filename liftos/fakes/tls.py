"""A self-signed certificate for ``localhost``/``127.0.0.1``: the fake Google Ads server speaks
TLS like the real one, and clients trust it through ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` instead
of any change to the client code."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path


def self_signed(folder: Path) -> tuple[Path, Path]:
    """Write (or reuse) ``fake-ca.pem`` and ``fake-key.pem`` in ``folder``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path, key_path = folder / "fake-ca.pem", folder / "fake-key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def trust_bundle(cert: Path, folder: Path) -> Path:
    """A roots file trusting the fake's certificate besides the roots already trusted (the file
    in ``GRPC_DEFAULT_SSL_ROOTS_FILE_PATH`` if set, else certifi's), for that variable."""
    import os

    import certifi

    current = Path(os.environ.get("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH") or certifi.where())
    bundle = folder / "roots-with-fake.pem"
    if not bundle.exists():
        base = current.read_bytes() if current.exists() and current != bundle else b""
        bundle.write_bytes(base.rstrip(b"\n") + b"\n" + cert.read_bytes())
    return bundle
