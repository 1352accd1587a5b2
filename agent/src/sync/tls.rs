//! TLS for the link: the `[sync.tls]` PEM files read into a rustls client config on the `ring`
//! provider (built here, not from a process-wide default provider, so nothing depends on which
//! provider features other crates switch on).
//!
//! The broker must present a certificate chaining to the configured CA — the only root trusted
//! — for the broker's host name or IP address. With `cert` and `key` the agent authenticates
//! itself (mTLS). Does not own: where the files are named (the config) or the connection.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Config, Problem, Sync};

/// The client config for `sync`, or `None` when the link is plain TCP.
///
/// # Errors
/// Every problem with the files, each with its key path (`sync.tls.ca`, …) and the file.
pub fn client_config(
    config: &Config,
    sync: &Sync,
) -> Result<Option<Arc<rustls::ClientConfig>>, Vec<Problem>> {
    if !sync.uses_tls() {
        return Ok(None);
    }
    let Some(tls) = &sync.tls else {
        return Err(vec![Problem::new(
            "sync.tls.ca",
            "an mqtts broker needs [sync.tls] with the CA that signed its certificate",
        )]);
    };
    let mut problems = Vec::new();
    let mut roots = rustls::RootCertStore::empty();
    match certs(&config.resolve(&tls.ca)) {
        Ok(certs) => {
            for cert in certs {
                if let Err(e) = roots.add(cert) {
                    problems.push(Problem::new(
                        "sync.tls.ca",
                        format!("{}: not a usable CA certificate: {e}", tls.ca.display()),
                    ));
                }
            }
        }
        Err(e) => problems.push(Problem::new("sync.tls.ca", e)),
    }
    let identity = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = certs(&config.resolve(cert))
                .map_err(|e| problems.push(Problem::new("sync.tls.cert", e)))
                .ok();
            let key_path = config.resolve(key);
            let key = PrivateKeyDer::from_pem_file(&key_path)
                .map_err(|e| {
                    problems.push(Problem::new(
                        "sync.tls.key",
                        format!("{}: no private key read: {e}", key_path.display()),
                    ));
                })
                .ok();
            chain.zip(key)
        }
        _ => None,
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| vec![Problem::new("sync.tls", e.to_string())])?
        .with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
            vec![Problem::new(
                "sync.tls.key",
                format!("does not fit the client certificate: {e}"),
            )]
        })?,
        None => builder.with_no_client_auth(),
    };
    Ok(Some(Arc::new(config)))
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
    use crate::config::BrokerUrl;
    use crate::config::SyncTls;

    fn config_in(dir: &Path) -> Config {
        let text = r#"
[vehicle]
vin = "WVWZZZ1KZ8W012345"
line = "t"
category = "passenger"
delivered = "2021-03-15"
"#;
        let mut c = Config::from_toml("t.toml", text).unwrap();
        c.path = Some(dir.join("agent.toml"));
        c
    }

    #[test]
    fn plain_links_need_nothing_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let c = config_in(dir.path());
        let plain = Sync::new(BrokerUrl::parse("mqtt://127.0.0.1").unwrap());
        assert!(client_config(&c, &plain).unwrap().is_none());

        let mut tls = Sync::new(BrokerUrl::parse("mqtts://broker.example").unwrap());
        assert_eq!(client_config(&c, &tls).unwrap_err()[0].path, "sync.tls.ca");
        std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
        tls.tls = Some(SyncTls {
            ca: "ca.pem".into(),
            cert: Some("missing.pem".into()),
            key: Some("missing.key".into()),
        });
        let problems = client_config(&c, &tls).unwrap_err();
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
