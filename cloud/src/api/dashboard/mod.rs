//! The operator dashboard: one HTML page, its script (`app.js`, with the ES modules it imports:
//! `format.js`, `chart.js`) and a style sheet, embedded in the binary (`include_str!`, no
//! build step, nothing fetched from elsewhere) and served under `/dashboard/`. `GET /` and
//! `GET /dashboard` redirect there.
//!
//! Owns the static files, their routes and their response headers: the content type,
//! `Cache-Control: no-cache` (a new binary's page is never stale) and a strict
//! `Content-Security-Policy` — scripts, styles, images and `fetch` only from this origin, no
//! inline script or style, no frames, no form posts. The files need no token: the page asks
//! for the operator's token (from the URL fragment `#token=…`, which browsers never send, or
//! a small form), keeps it in `sessionStorage` and calls the bearer-token `/api/v1` routes
//! ([`super::vehicles`], [`super::timeline`], [`super::layers`], [`super::alerts`]) itself,
//! showing times and ages as the cloud's clock gives them, and draws the readings' charts as
//! SVG built element by element (no library, nothing inline). Does not own any data or any
//! check of the token.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// Where the page lives (with the trailing slash, so its relative asset links resolve).
pub const PATH: &str = "/dashboard/";

/// The policy on every dashboard response. `connect-src 'self'`: the page talks to this
/// cloud only; no `'unsafe-inline'` anywhere, so injected markup cannot run or restyle.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asset {
    /// Its name under [`PATH`] (`""` is the page itself).
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static str,
}

/// Every file the dashboard serves.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "",
        content_type: "text/html; charset=utf-8",
        body: include_str!("index.html"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("app.js"),
    },
    Asset {
        name: "format.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("format.js"),
    },
    Asset {
        name: "chart.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("chart.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("style.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("favicon.svg"),
    },
];

/// The asset called `name` (`""` or `index.html`: the page).
pub fn asset(name: &str) -> Option<&'static Asset> {
    let name = if name == "index.html" { "" } else { name };
    ASSETS.iter().find(|a| a.name == name)
}

/// The dashboard's routes; they use no state, so they merge into any router.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(to_dashboard))
        .route("/dashboard", get(to_dashboard))
        .route(PATH, get(page))
        .route("/dashboard/{name}", get(file))
}

/// 303 to the page; a fragment (`#token=…`) stays with the browser across the redirect.
async fn to_dashboard() -> Redirect {
    Redirect::to(PATH)
}

async fn page() -> Response {
    serve("")
}

async fn file(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    serve(&name)
}

fn serve(name: &str) -> Response {
    let Some(a) = asset(name) else {
        return super::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such dashboard file")
            .into_response();
    };
    let mut response = a.body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `html` has an attribute like ` onclick=`.
    fn has_event_handler(html: &str) -> bool {
        html.match_indices(" on").any(|(i, _)| {
            let rest = &html[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        })
    }

    #[test]
    fn the_event_handler_check_finds_handlers_only() {
        assert!(has_event_handler("<b onclick=\"x()\">"));
        assert!(has_event_handler("<img src=x onerror=alert(1)>"));
        assert!(!has_event_handler("<p>on this vehicle's timeline</p>"));
        assert!(!has_event_handler("<p>once on</p>"));
    }

    /// The page references exactly the embedded files, and only by relative, same-origin
    /// links (an absolute or protocol-relative URL would need a network the dashboard must
    /// not rely on).
    #[test]
    fn the_page_links_only_embedded_files() {
        let Some(page) = asset("") else {
            panic!("no page");
        };
        let mut linked = Vec::new();
        for attr in ["src=\"", "href=\""] {
            for (i, _) in page.body.match_indices(attr) {
                let rest = &page.body[i + attr.len()..];
                let target = rest.split('"').next().unwrap_or_default();
                // In-page routes (`#/`) are the page itself.
                if !target.starts_with('#') {
                    linked.push(target.to_owned());
                }
            }
        }
        linked.sort();
        assert_eq!(linked, ["app.js", "favicon.svg", "style.css"]);
        for name in &linked {
            assert!(asset(name).is_some(), "{name} is linked but not served");
        }
        assert_eq!(asset("index.html"), asset(""));
        assert_eq!(asset("../Cargo.toml"), None);
        assert_eq!(asset("nope.js"), None);
    }

    /// The files respect the policy they are served with: no inline script, no inline
    /// event handler, no style attribute, and the script never writes markup from strings.
    #[test]
    fn the_files_need_no_inline_allowance() {
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(CONTENT_SECURITY_POLICY.contains("connect-src 'self'"));
        let page = asset("").map(|a| a.body).unwrap_or_default();
        let scripts: Vec<&str> = page
            .match_indices("<script")
            .map(|(i, _)| &page[i..])
            .collect();
        assert_eq!(scripts.len(), 1, "one script tag");
        for s in scripts {
            let tag = s.split('>').next().unwrap_or_default();
            assert!(tag.contains("src=\""), "inline script: {tag}");
        }
        assert!(!page.contains(" style="), "style attribute in the page");
        assert!(!page.contains("<style"), "inline style element in the page");
        assert!(!has_event_handler(page), "inline event handler in the page");
        let scripts: Vec<&Asset> = ASSETS
            .iter()
            .filter(|a| a.content_type.starts_with("text/javascript"))
            .collect();
        assert_eq!(scripts.len(), 3, "app.js and its modules");
        for script in scripts {
            let (name, body) = (script.name, script.body);
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!body.contains(sink), "{name} uses {sink}");
            }
            assert!(
                !body.contains("setAttribute('style'"),
                "{name}: style attribute set from script"
            );
        }
    }

    /// Every module a script imports is served, by a relative same-origin path.
    #[test]
    fn the_scripts_import_only_embedded_modules() {
        for script in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for line in script.body.lines().filter(|l| l.starts_with("import ")) {
                let target = line
                    .rsplit(" from ")
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches(';')
                    .trim_matches('\'');
                let name = target.strip_prefix("./").unwrap_or_else(|| {
                    panic!("{}: {target:?} is not a relative import", script.name)
                });
                assert!(
                    asset(name).is_some(),
                    "{}: {name} is not served",
                    script.name
                );
            }
        }
    }
}
