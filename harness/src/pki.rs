//! Throw-away PKI for tests: a CA made at run time, a server certificate for the loopback broker
//! and client certificates whose subject CN is an identity (a VIN, or `cloud-ingest`), written as
//! PEM files into a directory the caller owns.
//!
//! It owns key generation and file layout only. It does not build TLS client configurations
//! (each client under test does that from the files, as it would in production) and it is not a
//! model of how certificates are provisioned to vehicles. Keys are ECDSA P-256 (rcgen with ring);
//! certificates are valid from 1975 to 4096, so no test ever meets an expiry.
//!
//! File layout in the directory: `ca.crt`, `server.crt` + `server.key`,
//! `client-<identity>.crt` + `client-<identity>.key`. One CA per directory.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::Error;

/// A certificate authority generated at run time; its certificate is written to `ca.crt`.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
    cert: PathBuf,
    cert_pem: String,
}

/// Names the certificate's file; the key stays out of debug output.
impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ca({})", self.cert.display())
    }
}

/// A certificate and its private key, as PEM text and as the files they were written to.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The subject CN: the identity for a client, `rapport test broker` for the server.
    pub identity: String,
    /// Path of the PEM certificate.
    pub cert: PathBuf,
    /// Path of the PEM private key (PKCS#8).
    pub key: PathBuf,
    /// The PEM certificate.
    pub cert_pem: String,
    /// The PEM private key (PKCS#8).
    pub key_pem: String,
}

impl Ca {
    /// Generates a CA named `name` (its subject CN) and writes `ca.crt` into `dir`, which must
    /// exist.
    ///
    /// # Errors
    /// [`Error::Pki`] if rcgen fails, [`Error::Io`] if the file cannot be written.
    pub fn generate(dir: &Path, name: &str) -> Result<Self, Error> {
        let pki = |source| Error::Pki {
            what: format!("CA {name:?}"),
            source,
        };
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(pki)?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(pki)?;
        let cert_pem = issuer.pem();
        let cert = dir.join("ca.crt");
        write(&cert, &cert_pem, "writing CA certificate")?;
        Ok(Self {
            issuer,
            dir: dir.to_path_buf(),
            cert,
            cert_pem,
        })
    }

    /// Path of the CA certificate (`ca.crt`): the broker's `cafile`, the clients' trust root.
    pub fn cert(&self) -> &Path {
        &self.cert
    }

    /// The CA certificate as PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues the broker's certificate, valid for `127.0.0.1`, `::1` and `localhost`, and
    /// writes `server.crt` and `server.key`.
    ///
    /// # Errors
    /// [`Error::Pki`] if rcgen fails, [`Error::Io`] if a file cannot be written.
    pub fn server(&self) -> Result<Issued, Error> {
        let names = vec!["127.0.0.1".into(), "::1".into(), "localhost".into()];
        let pki = |source| Error::Pki {
            what: "server certificate".into(),
            source,
        };
        let mut params = CertificateParams::new(names).map_err(pki)?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, "rapport test broker", "server")
    }

    /// Issues a client certificate whose subject CN is `identity` (a VIN, `cloud-ingest`) and
    /// writes `client-<identity>.crt` and `client-<identity>.key`. With
    /// `use_identity_as_username true` Mosquitto takes the CN as the MQTT username.
    ///
    /// # Errors
    /// [`Error::Identity`] unless `identity` is 1-64 characters of `A-Z a-z 0-9 . _ -`;
    /// [`Error::Pki`] if rcgen fails, [`Error::Io`] if a file cannot be written.
    pub fn client(&self, identity: &str) -> Result<Issued, Error> {
        let usable = (1..=64).contains(&identity.len())
            && identity
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
            && !identity.starts_with('.');
        if !usable {
            return Err(Error::Identity(identity.to_owned()));
        }
        let mut params = CertificateParams::default();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, identity, &format!("client-{identity}"))
    }

    fn issue(&self, mut params: CertificateParams, cn: &str, stem: &str) -> Result<Issued, Error> {
        let pki = |source| Error::Pki {
            what: format!("certificate {cn:?}"),
            source,
        };
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().map_err(pki)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(pki)?;
        let issued = Issued {
            identity: cn.to_owned(),
            cert: self.dir.join(format!("{stem}.crt")),
            key: self.dir.join(format!("{stem}.key")),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        write(&issued.cert, &issued.cert_pem, "writing certificate")?;
        write(&issued.key, &issued.key_pem, "writing private key")?;
        Ok(issued)
    }
}

fn write(path: &Path, pem: &str, what: &'static str) -> Result<(), Error> {
    std::fs::write(path, pem).map_err(|source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_files_it_names_and_refuses_identities_that_are_not_file_names() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate(dir.path(), "test CA").unwrap();
        let server = ca.server().unwrap();
        let vehicle = ca.client("WVWZZZ1JZXW000001").unwrap();

        assert_eq!(ca.cert(), dir.path().join("ca.crt"));
        assert_eq!(
            vehicle.cert,
            dir.path().join("client-WVWZZZ1JZXW000001.crt")
        );
        assert_eq!(vehicle.identity, "WVWZZZ1JZXW000001");
        for (path, pem) in [
            (ca.cert(), ca.cert_pem()),
            (&server.cert, &server.cert_pem),
            (&server.key, &server.key_pem),
            (&vehicle.cert, &vehicle.cert_pem),
            (&vehicle.key, &vehicle.key_pem),
        ] {
            assert_eq!(std::fs::read_to_string(path).unwrap(), pem);
        }
        assert!(vehicle.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(vehicle.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_ne!(vehicle.cert_pem, server.cert_pem);

        for bad in [
            "",
            "../etc",
            "a/b",
            ".hidden",
            "vin with space",
            &"x".repeat(65),
        ] {
            assert!(matches!(ca.client(bad), Err(Error::Identity(_))), "{bad:?}");
        }
    }
}
