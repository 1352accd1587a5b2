//! The cloud's counters and their Prometheus text form ([`Metrics::render`]).
//!
//! Owns the names and meanings of the metrics; counters are plain atomics bumped by the
//! ingest worker, the MQTT loop and the API. Does not own serving them (see [`crate::api`]).

use core::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::ingest::{PlanStats, RejectReason};

/// Counters and gauges, shared by every part of the cloud.
#[derive(Debug, Default)]
pub struct Metrics {
    /// MQTT publishes handled by the ingest (accepted or rejected).
    pub messages: AtomicU64,
    /// Envelopes accepted (decoded, VIN checked), whether or not they held new records.
    pub batches: AtomicU64,
    /// Records applied (each (VIN, seq) counts once, ever).
    pub records_applied: AtomicU64,
    /// Records skipped because their seq was applied before.
    pub duplicates: AtomicU64,
    /// Applied records of kinds this build does not know.
    pub unknown_records: AtomicU64,
    /// Seqs given up on to keep per-vehicle gaps bounded.
    pub seqs_abandoned: AtomicU64,
    /// Rejections by reason, indexed like [`RejectReason::ALL`].
    pub rejects: [AtomicU64; RejectReason::ALL.len()],
    /// Vehicles in the store.
    pub vehicles: AtomicU64,
    /// Store flushes by the ingest.
    pub flushes: AtomicU64,
    /// Time spent in those flushes, microseconds.
    pub flush_micros: AtomicU64,
    /// MQTT acks sent for ingested publishes.
    pub acks: AtomicU64,
    /// Acks not sent because the connection they belong to is gone (the broker redelivers).
    pub stale_acks: AtomicU64,
    /// Uplinks whose fleet effects failed (records applied all the same).
    pub fleet_errors: AtomicU64,
    /// API requests refused (4xx).
    pub api_rejects: AtomicU64,
    /// MQTT connections made (ConnAcks received).
    pub connects: AtomicU64,
    /// Downlink messages published.
    pub downlinks: AtomicU64,
    /// Whether the ingest subscription is in place now.
    pub subscribed: AtomicBool,
    /// Whether the store is unavailable now (a PostgreSQL outage): the ingest is not acking.
    pub store_down: AtomicBool,
    /// Whether the store's last failure was a full file system (sled `ENOSPC`).
    pub store_full: AtomicBool,
    /// Times the store went from available to unavailable.
    pub store_outages: AtomicU64,
    /// Ingest groups tried again because the store was unavailable.
    pub ingest_retries: AtomicU64,
    /// Entries the retention pruned, per kind (shared with [`crate::retention::Pruner`]).
    pub retention: std::sync::Arc<crate::retention::Pruned>,
    /// Vehicles erased through the API (a repeated erase of one vehicle counts once).
    pub erasures: AtomicU64,
    /// Records of erased vehicles dropped as from before their erasure.
    pub late_records_dropped: AtomicU64,
    /// Vehicle exports served.
    pub exports: AtomicU64,
    /// API requests refused by the rate limiter, by caller (`operator`, `partner:<id>`,
    /// `unknown`).
    pub api_rate_limited: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    /// Audit entries the store could not take.
    pub audit_failures: AtomicU64,
}

fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    /// Notes whether the store answers; true when that is a change (up → down counts an
    /// outage), so the caller logs the change once, not every try.
    pub fn store_up(&self, up: bool) -> bool {
        let was_down = self.store_down.swap(!up, Ordering::AcqRel);
        let changed = was_down == up;
        if changed && !up {
            bump(&self.store_outages, 1);
        }
        changed
    }

    /// Whether the store answered at the last try or probe.
    pub fn is_store_up(&self) -> bool {
        !self.store_down.load(Ordering::Acquire)
    }

    /// Counts one request refused by the rate limiter.
    pub fn rate_limited(&self, who: &str) {
        if let Ok(mut m) = self.api_rate_limited.lock() {
            *m.entry(who.to_owned()).or_default() += 1;
        }
    }

    /// Counts one rejection.
    pub fn reject(&self, reason: RejectReason) {
        if let Some(c) = self.rejects.get(reason.index()) {
            bump(c, 1);
        }
    }

    /// Rejections so far for one reason.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejects
            .get(reason.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Counts one applied envelope.
    pub fn applied(&self, stats: &PlanStats) {
        bump(&self.batches, 1);
        bump(&self.records_applied, stats.applied);
        bump(&self.duplicates, stats.duplicates);
        bump(&self.unknown_records, stats.unknown);
        bump(&self.seqs_abandoned, stats.abandoned);
        if stats.new_vehicle && stats.applied > 0 {
            bump(&self.vehicles, 1);
        }
        for _ in 0..stats.too_large {
            self.reject(RejectReason::RecordTooLarge);
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {value}");
        };
        counter(
            "rapport_ingest_messages_total",
            "MQTT publishes handled by the ingest, accepted or rejected.",
            get(&self.messages),
        );
        counter(
            "rapport_ingest_batches_total",
            "Uplink envelopes accepted.",
            get(&self.batches),
        );
        counter(
            "rapport_ingest_records_applied_total",
            "Records applied; each (VIN, seq) counts once.",
            get(&self.records_applied),
        );
        counter(
            "rapport_ingest_duplicates_skipped_total",
            "Records skipped because their seq was applied before.",
            get(&self.duplicates),
        );
        counter(
            "rapport_ingest_unknown_records_total",
            "Applied records of kinds this build does not know.",
            get(&self.unknown_records),
        );
        counter(
            "rapport_ingest_seqs_abandoned_total",
            "Sequence numbers given up on to keep per-vehicle gaps bounded.",
            get(&self.seqs_abandoned),
        );
        counter(
            "rapport_ingest_flushes_total",
            "Store flushes (fsync) by the ingest.",
            get(&self.flushes),
        );
        counter(
            "rapport_ingest_flush_microseconds_total",
            "Time spent flushing the store, microseconds.",
            get(&self.flush_micros),
        );
        counter(
            "rapport_ingest_acks_total",
            "MQTT acks sent for ingested publishes.",
            get(&self.acks),
        );
        counter(
            "rapport_ingest_stale_acks_total",
            "Acks dropped because their connection is gone (the broker redelivers).",
            get(&self.stale_acks),
        );
        counter(
            "rapport_fleet_errors_total",
            "Uplinks whose fleet effects (layers, strategies, alerts) failed.",
            get(&self.fleet_errors),
        );
        counter(
            "rapport_api_rejects_total",
            "API requests refused with a 4xx.",
            get(&self.api_rejects),
        );
        counter(
            "rapport_mqtt_connects_total",
            "MQTT connections made by the cloud.",
            get(&self.connects),
        );
        counter(
            "rapport_downlinks_sent_total",
            "Downlink messages published.",
            get(&self.downlinks),
        );
        let _ = writeln!(
            out,
            "# HELP rapport_ingest_rejects_total Publishes or records refused, by reason."
        );
        let _ = writeln!(out, "# TYPE rapport_ingest_rejects_total counter");
        for reason in RejectReason::ALL {
            let _ = writeln!(
                out,
                "rapport_ingest_rejects_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                self.rejected(reason)
            );
        }
        let _ = writeln!(out, "# HELP rapport_vehicles Vehicles in the store.");
        let _ = writeln!(out, "# TYPE rapport_vehicles gauge");
        let _ = writeln!(out, "rapport_vehicles {}", get(&self.vehicles));
        let _ = writeln!(
            out,
            "# HELP rapport_ingest_subscribed Whether the uplink subscription is in place."
        );
        let _ = writeln!(out, "# TYPE rapport_ingest_subscribed gauge");
        let _ = writeln!(
            out,
            "rapport_ingest_subscribed {}",
            u8::from(self.subscribed.load(Ordering::Relaxed))
        );
        let _ = writeln!(
            out,
            "# HELP rapport_store_up Whether the store answers (0 during a database outage: uplinks are not acked)."
        );
        let _ = writeln!(out, "# TYPE rapport_store_up gauge");
        let _ = writeln!(out, "rapport_store_up {}", u8::from(self.is_store_up()));
        let _ = writeln!(
            out,
            "# HELP rapport_store_full Whether the store's file system is full (sled ENOSPC: uplinks are not acked; restart once space is back)."
        );
        let _ = writeln!(out, "# TYPE rapport_store_full gauge");
        let _ = writeln!(
            out,
            "rapport_store_full {}",
            u8::from(!self.is_store_up() && self.store_full.load(Ordering::Acquire))
        );
        let _ = writeln!(
            out,
            "# HELP rapport_store_outages_total Times the store became unavailable."
        );
        let _ = writeln!(out, "# TYPE rapport_store_outages_total counter");
        let _ = writeln!(
            out,
            "rapport_store_outages_total {}",
            get(&self.store_outages)
        );
        let _ = writeln!(
            out,
            "# HELP rapport_ingest_store_retries_total Ingest groups tried again on an unavailable store."
        );
        let _ = writeln!(out, "# TYPE rapport_ingest_store_retries_total counter");
        let _ = writeln!(
            out,
            "rapport_ingest_store_retries_total {}",
            get(&self.ingest_retries)
        );
        self.retention.render(&mut out);
        for (name, help, v) in [
            (
                "rapport_erasures_total",
                "Vehicles erased through the API (a repeated erase counts once).",
                &self.erasures,
            ),
            (
                "rapport_erasure_late_records_dropped_total",
                "Records of erased vehicles dropped as from before their erasure.",
                &self.late_records_dropped,
            ),
            (
                "rapport_exports_total",
                "Vehicle exports served.",
                &self.exports,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", get(v));
        }
        let _ = writeln!(
            out,
            "# HELP rapport_api_rate_limited_total API requests refused with 429 by the rate limiter, by caller."
        );
        let _ = writeln!(out, "# TYPE rapport_api_rate_limited_total counter");
        if let Ok(m) = self.api_rate_limited.lock() {
            for (who, n) in m.iter() {
                // Partner ids are `A-Z a-z 0-9 . _ -`: nothing to escape in a label.
                let _ = writeln!(out, "rapport_api_rate_limited_total{{who=\"{who}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP rapport_api_audit_failures_total Audit entries the store could not take."
        );
        let _ = writeln!(out, "# TYPE rapport_api_audit_failures_total counter");
        let _ = writeln!(
            out,
            "rapport_api_audit_failures_total {}",
            get(&self.audit_failures)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_reason_and_counts() {
        let m = Metrics::default();
        m.reject(RejectReason::VinMismatch);
        m.applied(&PlanStats {
            applied: 5,
            duplicates: 2,
            too_large: 1,
            new_vehicle: true,
            ..PlanStats::default()
        });
        let text = m.render();
        assert!(text.contains("rapport_ingest_records_applied_total 5\n"));
        assert!(text.contains("rapport_ingest_duplicates_skipped_total 2\n"));
        assert!(text.contains("rapport_ingest_rejects_total{reason=\"vin_mismatch\"} 1\n"));
        assert!(text.contains("rapport_ingest_rejects_total{reason=\"record_too_large\"} 1\n"));
        assert!(text.contains("rapport_ingest_rejects_total{reason=\"oversize\"} 0\n"));
        assert!(text.contains("rapport_vehicles 1\n"));
        // Every sample line is `name value` or `name{labels} value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap_or_default();
            assert!(value.parse::<u64>().is_ok(), "{line}");
        }
    }
}
