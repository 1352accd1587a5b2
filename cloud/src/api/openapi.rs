//! The API's OpenAPI 3.1 document, generated from the typed routes and views (docs/api.md).
//!
//! Every route of the API is added through a [`utoipa_axum::router::OpenApiRouter`] with
//! `routes!(handler)`: the handler's `#[utoipa::path]` attribute gives both the path axum
//! serves and its operation in the document, and the request and answer types derive
//! [`utoipa::ToSchema`], so a route cannot be served without being documented, nor a field
//! answered without being in the schema. [`document`] is the whole document: the routes'
//! operations, then what every `/api/v1` route shares ([`finish`]): the bearer scheme, and the
//! 401 `unauthorized` and 503 `store_unavailable` answers, each in the stable
//! `{"error":{"code","message"}}` shape ([`ErrorBody`]).
//!
//! Served at [`PATH`] without a token (`GET /api/v1/openapi.json`). The test
//! `cloud/tests/openapi.rs` walks the document against the running router both ways.
//!
//! Owns the document's frame (info, tags, security, shared answers) and its route. Does not own
//! any route's operation (each route's attribute, beside its handler).

use std::sync::{Arc, LazyLock};

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, Ref, RefOr, ResponseBuilder, SecurityRequirement, path::Operation,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use super::error::ErrorBody;
use super::state::Shared;

/// Where the document is served (no token).
pub const PATH: &str = "/api/v1/openapi.json";

/// The name of the bearer scheme in the document.
pub const BEARER: &str = "bearer";

/// The document's frame; the routes add their operations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "rapport cloud API",
        description = "The fleet API of the rapport cloud: vehicles, their timelines and readings, \
            the registry, the layer matrix, alerts, partners, campaigns and dead letters. Every \
            `/api/v1` route needs `Authorization: Bearer <token>` (the operator's, or a \
            partner's, which sees only its own vehicles and alerts), except this document. \
            Every error is `{\"error\":{\"code\",\"message\"}}` with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "vehicles", description = "Vehicles, their timelines and readings, downlinks."),
        (name = "registry", description = "The vehicle registry (operator)."),
        (name = "layers", description = "The layer matrix (operator)."),
        (name = "alerts", description = "Alerts to partners: list, acknowledge, resolve."),
        (name = "partners", description = "Partners (changes: operator)."),
        (name = "campaigns", description = "Campaigns to layer cells (operator)."),
        (name = "webhooks", description = "Dead letters of the webhook sender (operator)."),
        (name = "operations", description = "Health, metrics and this document (no token)."),
    )
)]
pub struct ApiDoc;

/// The route of the document itself.
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new().routes(routes!(serve))
}

/// This document (no token).
#[utoipa::path(operation_id = "openapi", get, path = "/api/v1/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API.",
        content_type = "application/json", body = Object)))]
async fn serve() -> Response {
    static TEXT: LazyLock<String> = LazyLock::new(|| {
        // The document is built from the types alone: it always serialises.
        document().to_pretty_json().unwrap_or_default()
    });
    ([(header::CONTENT_TYPE, "application/json")], TEXT.as_str()).into_response()
}

/// The whole document: the routes' operations ([`super::documented`]) and [`finish`].
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = super::documented().into_openapi();
    finish(&mut doc);
    doc
}

/// What every `/api/v1` route shares: the bearer scheme (not on routes that declare
/// `security(())`, which need no token) and the 401 and 503 error answers.
pub fn finish(doc: &mut utoipa::openapi::OpenApi) {
    doc.info.version = crate::VERSION.to_owned();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The operator's token (`[api]` in the config, or the `operator-token` \
                     file beside the store), or a partner's API token.",
                ))
                .build(),
        ),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let open = op
                .security
                .as_ref()
                .is_some_and(|s| s.iter().all(|r| *r == SecurityRequirement::default()));
            if !path.starts_with("/api/v1/") {
                continue;
            }
            // Every `/api/v1` request passes the caller's token bucket (api/ratelimit.rs).
            shared_error(
                op,
                "429",
                "`rate_limited`: over the caller's rate; `Retry-After` says in how many seconds \
                 to try again.",
            );
            if open {
                continue;
            }
            if op.security.is_none() {
                op.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
            }
            shared_error(
                op,
                "401",
                "`unauthorized`: no bearer token, or one nobody holds.",
            );
            shared_error(
                op,
                "503",
                "`store_unavailable`: the store does not answer now; try again shortly.",
            );
        }
    }
}

/// Adds an error answer of `status` to `op` unless it has one.
fn shared_error(op: &mut Operation, status: &str, description: &str) {
    if op.responses.responses.contains_key(status) {
        return;
    }
    let response = ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(Ref::from_schema_name("ErrorBody"))))
                .build(),
        )
        .build();
    op.responses
        .responses
        .insert(status.to_owned(), RefOr::T(response));
}
