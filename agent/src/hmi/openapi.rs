//! The HMI API's OpenAPI 3.1 document (docs/api.md), served at [`PATH`].
//!
//! Every build serves the committed `openapi.json` beside this file ([`DOCUMENT`],
//! `include_str!` in `server`, which serves it): the head unit's static binary has a 4 MiB budget, and utoipa's runtime
//! document builder is not worth its bytes there when the document is a constant. The file is
//! not written by hand: with the `openapi` feature (on by default, off in the head unit's
//! `--no-default-features` build) [`generate`] builds it from the routes' `#[utoipa::path]`
//! attributes and the views' `ToSchema` derives (`server::Operations`), and the test
//! `the_committed_document_is_the_generated_one` fails when the two differ. After changing a
//! route or a view, rewrite it with
//! `RAPPORT_WRITE_OPENAPI=1 cargo test -p rapport-agent --lib hmi::openapi` and commit it.
//!
//! Owns the document's frame and the check that the committed file is the generated one. Does
//! not own its route or any route's operation (each handler's attribute in `server`) or shape
//! (`views`).

/// Where the document is served.
pub const PATH: &str = super::server::OPENAPI_PATH;

/// The document, as generated and committed (served by `server`).
pub const DOCUMENT: &str = super::server::OPENAPI_DOCUMENT;

/// The document built from the routes and views: what [`DOCUMENT`] must be.
#[cfg(feature = "openapi")]
pub fn generate() -> String {
    use utoipa::OpenApi;

    /// The frame; the routes add their operations.
    #[derive(OpenApi)]
    #[openapi(
        info(
            title = "rapport agent HMI API",
            version = "1",
            description = "The head unit's screen talks to the agent over plain HTTP on \
                loopback (no token: the API never leaves the car). Every error is \
                `{\"error\":{\"code\",\"message\"}}` with a stable `code`; request bodies are \
                `application/json`, at most 16 KiB, without unknown fields.",
            license(name = "Apache-2.0", identifier = "Apache-2.0"),
        ),
        tags((name = "hmi", description = "The screen's routes."))
    )]
    struct Frame;

    let mut doc = Frame::openapi();
    doc.merge(super::server::Operations::openapi());
    let mut text = doc.to_json().unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(all(test, feature = "openapi"))]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn the_committed_document_is_the_generated_one() {
        let generated = super::generate();
        if std::env::var_os("RAPPORT_WRITE_OPENAPI").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/hmi/openapi.json");
            std::fs::write(path, &generated).unwrap();
            return;
        }
        assert!(
            super::DOCUMENT == generated,
            "agent/src/hmi/openapi.json is not what the routes and views generate: rewrite it \
             with `RAPPORT_WRITE_OPENAPI=1 cargo test -p rapport-agent --lib hmi::openapi` and \
             commit it"
        );
        let doc: serde_json::Value = serde_json::from_str(super::DOCUMENT).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
