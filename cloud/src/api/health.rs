//! The routes without a token, for operations tooling: `GET /healthz` (200 with whether the
//! ingest is subscribed, or 503 while the store does not answer) and `GET /metrics` (Prometheus text: the cloud's
//! counters, the fleet's and the webhook sender's, and the service promises kept and missed
//! per partner and stage — read from the stored alerts at each scrape).
//!
//! Owns these two answers. Does not own the counters ([`crate::metrics`], the fleet's
//! stats, the sender's counters). Keep the API on loopback or behind a proxy that guards
//! `/metrics`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::state::Shared;
use super::views::ok;

/// The health and metrics routes.
pub(crate) fn routes() -> OpenApiRouter<Arc<Shared>> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
}

/// `{"status": "ok", "version": ..., "ingest": {"subscribed": ...}, "store": {"backend":
/// ..., "up": ...}}`; 503 with `"status": "unavailable"` while the store does not answer
/// (the ingest is not acking; a load balancer takes the instance out).
#[derive(Serialize, ToSchema)]
#[schema(as = Health)]
struct HealthView {
    status: &'static str,
    version: &'static str,
    ingest: IngestHealth,
    store: StoreHealth,
}

/// The store: its backend (`sled`, `postgres`), whether it answers, and why not.
#[derive(Serialize, ToSchema)]
struct StoreHealth {
    backend: &'static str,
    up: bool,
    /// While down: `storage_full` (sled's file system is full; the cloud needs a restart once
    /// space is back) or `unavailable` (the database does not answer).
    reason: Option<&'static str>,
}

/// Whether the ingest is subscribed to the broker.
#[derive(Serialize, ToSchema)]
struct IngestHealth {
    subscribed: bool,
}

/// Health, for load balancers (no token).
#[utoipa::path(operation_id = "health", get, path = "/healthz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Up.", body = HealthView),
        (status = 503, description = "The store does not answer (`\"status\": \"unavailable\"`, `store.reason`: `storage_full` or `unavailable`).", body = HealthView),
    ))]
async fn healthz(State(s): State<Arc<Shared>>) -> Result<Response, ApiError> {
    let up = s.metrics.is_store_up();
    let view = HealthView {
        status: if up { "ok" } else { "unavailable" },
        version: crate::VERSION,
        ingest: IngestHealth {
            subscribed: s.metrics.subscribed.load(Ordering::Relaxed),
        },
        store: StoreHealth {
            backend: s.store.kind(),
            up,
            reason: match (up, s.metrics.store_full.load(Ordering::Acquire)) {
                (true, _) => None,
                (false, true) => Some("storage_full"),
                (false, false) => Some("unavailable"),
            },
        },
    };
    if up {
        ok(&view)
    } else {
        Ok((StatusCode::SERVICE_UNAVAILABLE, axum::Json(view)).into_response())
    }
}

/// Prometheus text: the cloud's, the fleet's and the webhook sender's counters (no token;
/// keep it behind the proxy).
#[utoipa::path(operation_id = "metrics", get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text format 0.0.4.",
        body = String, content_type = "text/plain; version=0.0.4; charset=utf-8")))]
async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let mut text = s.metrics.render();
    render_fleet(&s, &mut text);
    let shared = Arc::clone(&s);
    match tokio::task::spawn_blocking(move || promises_text(&shared)).await {
        Ok(Ok(more)) => text.push_str(&more),
        Ok(Err(e)) => tracing::warn!(cause = %e, "promise metrics left out: the store failed"),
        Err(e) => tracing::warn!(cause = %e, "promise metrics left out"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

fn render_fleet(s: &Shared, out: &mut String) {
    let mut counter = |name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} counter");
        let _ = writeln!(out, "{name} {value}");
    };
    {
        let st = s.fleet.stats();
        counter(
            "rapport_fleet_layer_changes_total",
            "Layer changes recorded.",
            st.layer_changes,
        );
        counter(
            "rapport_fleet_campaigns_total",
            "Campaigns sent down by strategies and operators.",
            st.campaigns,
        );
        counter(
            "rapport_fleet_alerts_opened_total",
            "Partner alerts opened.",
            st.alerts_opened,
        );
        counter(
            "rapport_fleet_alerts_escalated_total",
            "Alerts escalated after their SLA.",
            st.alerts_escalated,
        );
        counter(
            "rapport_fleet_suppressed_total",
            "Strategy actions held back (consent, cadence, caps, no partner).",
            st.suppressed,
        );
    }
    let w = &s.webhooks;
    counter(
        "rapport_webhook_attempts_total",
        "Webhook delivery attempts.",
        w.attempts(),
    );
    counter(
        "rapport_webhook_delivered_total",
        "Webhooks delivered (2xx).",
        w.delivered(),
    );
    counter(
        "rapport_webhook_retried_total",
        "Webhook attempts failed with a retry scheduled.",
        w.retried(),
    );
    counter(
        "rapport_webhook_dead_total",
        "Webhooks moved to the dead letters.",
        w.dead(),
    );
}

/// `rapport_promises_kept_total` / `_missed_total` (every promise settled so far) and
/// `rapport_promise_kept_share` (those settled in the last 30 days), per partner and stage.
fn promises_text(s: &Shared) -> Result<String, crate::store::StoreError> {
    use crate::fleet::alerts::stages::shares;
    let now = s.fleet.clock.now();
    let alerts = s.store.alerts(false, None)?;
    let all = shares(&alerts, rapport_shared::Timestamp::from_millis(0), now, now);
    let window = super::alerts::SHARE_WINDOW;
    let from = rapport_shared::Timestamp::from_millis(
        now.as_millis()
            .saturating_sub(u64::try_from(window.as_millis()).unwrap_or(u64::MAX)),
    );
    let recent = shares(&alerts, from, now, now);
    let mut out = String::new();
    for (name, help, kind) in [
        (
            "rapport_promises_kept_total",
            "Service promises kept (stage reached by its due).",
            "counter",
        ),
        (
            "rapport_promises_missed_total",
            "Service promises missed (due passed unreached).",
            "counter",
        ),
        (
            "rapport_promise_kept_share",
            "Share of service promises kept over the last 30 days.",
            "gauge",
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let rows = if kind == "gauge" { &recent } else { &all };
        for p in rows {
            for st in &p.stages {
                let labels = format!(
                    "partner=\"{}\",stage=\"{}\"",
                    escape(&p.partner),
                    st.stage.as_str()
                );
                let value = match name {
                    "rapport_promises_kept_total" => st.tally.kept.to_string(),
                    "rapport_promises_missed_total" => st.tally.missed.to_string(),
                    _ => match st.tally.share {
                        Some(v) => format!("{v}"),
                        None => continue,
                    },
                };
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        }
    }
    Ok(out)
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
