//! Partners and alerts, pure cores (run: `cargo bench -p rapport-cloud --bench alerts`).
//!
//! - `by_token`: the API's bearer lookup (SHA-256, then a constant-time compare with every
//!   partner) among 10 and 1,000 partners;
//! - `route_provider`: the provider scan (by id) when the match is the last provider;
//! - `alert_new`: raising a maintenance alert with a 5-item checklist and 2 faults (payload
//!   built); `webhook_body`: its body bytes; `postcard`: storing and loading it.
//!
//! Figures go to the report, not into assertions.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rapport_cloud::fleet::alerts::{
    Alert, AlertContext, AlertKind, AlertPolicy, ChecklistItem, ChecklistStatus, Fault,
};
use rapport_cloud::fleet::model::{
    Activity, CarMaturity, Category, Consents, DriverResponse, Layers, Lifecycle, PartnerTarget,
    Registration, ServiceMaturity,
};
use rapport_cloud::fleet::partners::{AlertsConfig, Directory, PartnerConfig, PartnerKind};
use rapport_shared::{Severity, Timestamp};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn token(i: usize) -> String {
    format!("token-{i:06}-0123456789abcdef0123456789abcdef")
}

fn directory(n: usize) -> Directory {
    let partners: Vec<PartnerConfig> = (0..n)
        .map(|i| PartnerConfig {
            id: format!("prov-{i:06}"),
            name: format!("Provider {i}"),
            kind: PartnerKind::ServiceProvider,
            webhook_url: format!("https://p{i}.example.com/hooks"),
            secret: SECRET.into(),
            regions: vec![format!("region-{i}")],
            capabilities: vec!["roadside".into(), "tyres".into()],
            token: Some(token(i)),
            token_env: None,
            previous_secret: None,
            previous_token: None,
            previous_token_env: None,
            rate_limit: None,
        })
        .collect();
    Directory::from_config(&partners, &AlertsConfig::default(), &|_| None).unwrap()
}

fn context() -> AlertContext {
    AlertContext {
        vin: "WVWZZZ1JZXW000001".parse().unwrap(),
        line: "e-compact 2025".into(),
        category: Category::Passenger,
        odometer_km: 14_950,
        checklist: ["oil", "brake_fluid", "cabin_filter", "tyres", "wipers"]
            .iter()
            .map(|item| ChecklistItem {
                item: (*item).into(),
                status: ChecklistStatus::Due,
                due_odometer_km: Some(15_000),
                due_date: Some(Timestamp::from_millis(1_760_000_000_000)),
            })
            .collect(),
        active_faults: vec![
            Fault {
                code: "P0300".into(),
                severity: Severity::Warning,
                since: Timestamp::from_millis(1_759_000_000_000),
            };
            2
        ],
        stored_codes: Vec::new(),
        driver_response: DriverResponse::Booked,
        layers: Layers {
            category: Category::Passenger,
            car: CarMaturity::Skilled,
            service: ServiceMaturity::Growing,
            activity: Activity::Declining,
            lifecycle: Lifecycle::Retained,
        },
        suggestion: "declining driver: a personal call is recommended".into(),
    }
}

fn partners(c: &mut Criterion) {
    for n in [10, 1000] {
        let dir = directory(n);
        let last = token(n - 1);
        c.bench_with_input(BenchmarkId::new("by_token", n), &dir, |b, dir| {
            b.iter(|| black_box(dir.by_token(black_box(&last))).is_some());
        });
        let reg = Registration {
            vin: "WVWZZZ1JZXW000001".parse().unwrap(),
            category: Category::Passenger,
            line: "e-compact 2025".into(),
            delivered: None,
            dealer: None,
            region: Some(format!("region-{}", n - 1)),
            consents: Consents::default(),
            owner_since: None,
            owner: None,
        };
        let target = PartnerTarget::Provider {
            capability: "tyres".into(),
        };
        c.bench_with_input(BenchmarkId::new("route_provider", n), &dir, |b, dir| {
            b.iter(|| black_box(dir.route(black_box(&target), &reg)).is_some());
        });
    }
}

fn alerts(c: &mut Criterion) {
    let ctx = context();
    let policy = AlertPolicy::default();
    let now = Timestamp::from_millis(1_760_000_000_000);
    let new_alert = |id| {
        Alert::new(
            id,
            AlertKind::Maintenance,
            "dealer-north",
            "oil",
            &ctx,
            &policy,
            now,
        )
    };
    c.bench_function("alert_new", |b| b.iter(|| new_alert(black_box(7))));
    let alert = new_alert(7);
    println!("webhook body: {} bytes", alert.webhook().body.len());
    c.bench_function("webhook_body", |b| b.iter(|| black_box(&alert).webhook()));
    let stored = postcard::to_allocvec(&alert).unwrap();
    println!("stored alert (postcard): {} bytes", stored.len());
    c.bench_function("postcard", |b| {
        b.iter(|| {
            let bytes = postcard::to_allocvec(black_box(&alert)).unwrap();
            postcard::from_bytes::<Alert>(&bytes).unwrap()
        });
    });
}

criterion_group!(benches, partners, alerts);
criterion_main!(benches);
