//! TLS for the link: the `[sync.tls]` PEM files read into a rustls client config on the `ring`
//! provider (built here, not from a process-wide default provider, so nothing depends on which
//! provider features other crates switch on).
//!
//! The broker must present a certificate chaining to the configured CA — the only root trusted
//! — for the broker's host name or IP address. With `cert` and `key` the agent authenticates
//! itself (mTLS). Does not own: where the files are named (the config; `crate::settings`
//! resolves them into [`TlsFiles`]) or the connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use rapport_kit::config::{Problem, key};
use rapport_shared::Vin;

use super::cn;

/// The PEM files of `[sync.tls]`, their paths resolved against the config's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    /// The CA certificate(s) the broker's certificate must chain to.
    pub(crate) ca: PathBuf,
    /// The agent's client certificate chain and its private key (mTLS); `None`: the agent
    /// does not authenticate itself with a certificate.
    pub(crate) client: Option<(PathBuf, PathBuf)>,
}

/// The client config for `files`; problems are named under the key path `path` (`sync.tls`).
///
/// # Errors
/// Every problem with the files, each with its key path (`sync.tls.ca`, …) and the file.
pub(crate) fn client_config(
    files: &TlsFiles,
    path: &str,
    vin: &Vin,
) -> Result<Arc<rustls::ClientConfig>, Vec<Problem>> {
    let at = |name: &str| key(path, name);
    let mut problems = Vec::new();
    let mut roots = rustls::RootCertStore::empty();
    match certs(&files.ca) {
        Ok(certs) => {
            for cert in certs {
                if let Err(e) = roots.add(cert) {
                    problems.push(Problem::new(
                        at("ca"),
                        format!("{}: not a usable CA certificate: {e}", files.ca.display()),
                    ));
                }
            }
        }
        Err(e) => problems.push(Problem::new(at("ca"), e)),
    }
    let identity = match &files.client {
        Some((cert, key_path)) => {
            let chain = certs(cert)
                .and_then(|chain| {
                    identity_is_vin(&chain, vin).map_err(|e| format!("{}: {e}", cert.display()))?;
                    Ok(chain)
                })
                .map_err(|e| problems.push(Problem::new(at("cert"), e)))
                .ok();
            let key = PrivateKeyDer::from_pem_file(key_path)
                .map_err(|e| {
                    problems.push(Problem::new(
                        at("key"),
                        format!("{}: no private key read: {e}", key_path.display()),
                    ));
                })
                .ok();
            chain.zip(key)
        }
        None => None,
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| vec![Problem::new(path, e.to_string())])?
        .with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
            vec![Problem::new(
                at("key"),
                format!("does not fit the client certificate: {e}"),
            )]
        })?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Whether the leaf of `chain` (its first certificate) names the car: its subject CN must be
/// `vin`, the identity the broker and the cloud give the car. A car presenting another's
/// certificate would publish as, and read the downlinks of, another VIN (or be refused by the
/// broker's ACL with nothing said on the car), so the agent refuses to start its sync.
///
/// # Errors
/// A sentence naming both the CN and the VIN, or why the CN cannot be read.
pub(crate) fn identity_is_vin(chain: &[CertificateDer<'_>], vin: &Vin) -> Result<(), String> {
    let leaf = chain
        .first()
        .ok_or_else(|| "no certificate in the file".to_owned())?;
    match cn::subject_cn(leaf.as_ref()) {
        Ok(name) if name == vin.as_str() => Ok(()),
        Ok(name) => Err(format!(
            "the client certificate's subject CN is {name:?}, not this car's VIN {vin} \
             ([vehicle] vin): the broker and the cloud know the car by its certificate's CN"
        )),
        Err(e) => Err(format!(
            "the client certificate's subject CN cannot be read ({e}); it must be this car's \
             VIN {vin}"
        )),
    }
}

/// Every certificate in a PEM file (at least one).
fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
        let files = TlsFiles {
            ca: dir.path().join("ca.pem"),
            client: Some((
                dir.path().join("missing.pem"),
                dir.path().join("missing.key"),
            )),
        };
        let vin = "1HGCM82633A004352".parse::<Vin>().unwrap();
        let problems = client_config(&files, "sync.tls", &vin).unwrap_err();
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{text:#?}");
        assert!(
            text[0].starts_with("sync.tls.ca: ") && text[0].contains("ca.pem"),
            "{text:#?}"
        );
        assert!(text[1].starts_with("sync.tls.cert: ") && text[1].contains("missing.pem"));
        assert!(text[2].starts_with("sync.tls.key: ") && text[2].contains("missing.key"));
    }
}
