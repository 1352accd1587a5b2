//! HTTP clients of tests: reqwest with the process's rustls provider installed, one call that
//! returns a status and a JSON body, and a sample read from Prometheus text.
//!
//! reqwest is built with rustls but without a default crypto provider (the cloud's webhook
//! sender brings its own ring configuration; no aws-lc in the tree): plain clients need the
//! process default, which [`install_crypto_provider`] installs once. Owns nothing of what the
//! APIs answer.

use serde_json::Value;

/// Installs ring as the process's rustls provider (a second call changes nothing).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A plain HTTP client.
pub fn client() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

/// One request: `method url`, with a bearer `token` and a JSON `body` when given; returns the
/// status and the body as JSON (`Null` when it is not JSON).
///
/// # Panics
/// If the request cannot be sent or the body not read (a test's server is down).
pub async fn request(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let mut r = client().request(method.clone(), url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_owned());
    }
    let resp = r
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let text = resp
        .text()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: reading the body: {e}"));
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The value of one sample in Prometheus text: the line `name value` (`name` with its labels).
pub fn metric(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_found_by_its_whole_name() {
        let text =
            "# HELP x\nrapport_vehicles 3\nrapport_ingest_rejects_total{reason=\"oversize\"} 2\n";
        assert_eq!(metric(text, "rapport_vehicles"), Some(3));
        assert_eq!(
            metric(text, "rapport_ingest_rejects_total{reason=\"oversize\"}"),
            Some(2)
        );
        assert_eq!(metric(text, "rapport_vehicle"), None);
    }
}
