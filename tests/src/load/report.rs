//! What a load run measured ([`LoadReport`]), its table form (`Display`), the latency
//! percentiles ([`Latency`]) and the correctness verdict ([`LoadReport::failures`]).
//!
//! Owns the arithmetic (nearest-rank percentiles, rates over the steady window) and the
//! wording. Does not own measuring ([`super::run`]).

use core::fmt;
use std::time::Duration;

use super::cloud::{BrokerKind, IngestCounters};

/// The latency target of issue 7: p99 from bus to webhook on loopback.
pub const P99_TARGET: Duration = Duration::from_secs(1);

/// Percentiles of a set of durations (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    /// How many.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

impl Latency {
    /// The percentiles of `samples`; `None` when empty.
    pub fn of(mut samples: Vec<Duration>) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |p: f64| {
            // Nearest rank: the smallest value with at least p of the samples at or below it.
            let n = samples.len();
            let k = ((p * n as f64).ceil() as usize).clamp(1, n);
            samples[k - 1]
        };
        Some(Self {
            count: samples.len(),
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: samples[samples.len() - 1],
        })
    }
}

/// What the partner's receiver got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookTally {
    /// Verified requests.
    pub attempts: u64,
    /// Distinct webhook ids delivered.
    pub delivered: u64,
    /// Deliveries of an id already delivered.
    pub duplicates: u64,
    /// Requests that failed the signature check.
    pub rejected: u64,
    /// `alert.critical_fault` deliveries for a VIN and code that was injected (first per VIN).
    pub critical_matched: u64,
    /// `alert.critical_fault` deliveries beyond the first for an injected VIN.
    pub critical_extra: u64,
    /// `alert.critical_fault` deliveries for a VIN or code never injected.
    pub critical_unexpected: u64,
    /// Deliveries of other event types.
    pub other: u64,
}

/// Everything a load run measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Vehicles simulated.
    pub vehicles: usize,
    /// The broker.
    pub broker: BrokerKind,
    /// Where the cloud ran.
    pub cloud: String,
    /// The seed of the fault plan.
    pub seed: u64,
    /// From the first connect to the last vehicle's first CONNACK.
    pub ramp: Duration,
    /// The measured window (after the ramp).
    pub steady: Duration,
    /// From the end of the window until every record was acked and applied and every
    /// webhook arrived (or the drain timeout).
    pub drain: Duration,
    /// Vehicles that connected.
    pub connected: u64,
    /// Reconnects after a vehicle's first connect.
    pub reconnects: u64,
    /// Connection errors.
    pub connection_errors: u64,
    /// Records made (each seq once).
    pub records_sent: u64,
    /// Records whose publish the broker acknowledged.
    pub records_acked: u64,
    /// Records sent again after a lost session.
    pub records_resent: u64,
    /// Publishes made / acknowledged.
    pub publishes: (u64, u64),
    /// Downlinks received by the vehicles.
    pub downlinks: u64,
    /// The cloud's counters at the end.
    pub cloud_end: IngestCounters,
    /// Records the cloud applied during the steady window.
    pub steady_applied: u64,
    /// Records the vehicles made during the steady window.
    pub steady_offered: u64,
    /// Faults planned / put on a bus / that failed to inject.
    pub faults: (usize, u64, u64),
    /// What the partner received.
    pub webhooks: WebhookTally,
    /// Bus → verified webhook at the partner, per injected fault that arrived.
    pub latency: Option<Latency>,
    /// Bus → publish handed to MQTT (the simulated agent's share).
    pub agent_latency: Option<Latency>,
    /// Injected faults with no webhook by the end of the drain (`VIN code`).
    pub missing: Vec<String>,
    /// Problems seen (connection errors, a cloud that stopped badly, timeouts), first few.
    pub problems: Vec<String>,
}

fn rate(n: u64, over: Duration) -> f64 {
    let s = over.as_secs_f64();
    if s > 0.0 { n as f64 / s } else { 0.0 }
}

impl LoadReport {
    /// Records per second the cloud applied over the steady window.
    pub fn ingest_rate(&self) -> f64 {
        rate(self.steady_applied, self.steady)
    }

    /// Records per second the vehicles made over the steady window.
    pub fn offered_rate(&self) -> f64 {
        rate(self.steady_offered, self.steady)
    }

    /// Whether p99 met [`P99_TARGET`] (`None` without samples).
    pub fn p99_met(&self) -> Option<bool> {
        self.latency.map(|l| l.p99 <= P99_TARGET)
    }

    /// Every way the run was not correct (empty: correct). Timing is never judged here.
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        let n = self.vehicles as u64;
        if self.connected != n {
            f.push(format!("{} of {n} vehicles connected", self.connected));
        }
        if self.records_acked != self.records_sent {
            f.push(format!(
                "{} records acked of {} sent",
                self.records_acked, self.records_sent
            ));
        }
        if self.cloud_end.applied != self.records_sent {
            f.push(format!(
                "the cloud applied {} records of {} sent",
                self.cloud_end.applied, self.records_sent
            ));
        }
        if self.cloud_end.rejects != 0 {
            f.push(format!("the cloud rejected {}", self.cloud_end.rejects));
        }
        let (planned, injected, failed) = self.faults;
        if injected != planned as u64 || failed != 0 {
            f.push(format!(
                "{injected} faults injected of {planned} planned ({failed} failed)"
            ));
        }
        let w = &self.webhooks;
        if w.critical_matched != injected {
            f.push(format!(
                "{} critical-fault webhooks matched of {injected} faults",
                w.critical_matched
            ));
        }
        if w.critical_extra + w.critical_unexpected + w.duplicates + w.rejected != 0 {
            f.push(format!(
                "webhooks: {} extra and {} unexpected critical-fault alerts, {} duplicates, {} rejected",
                w.critical_extra, w.critical_unexpected, w.duplicates, w.rejected
            ));
        }
        if !self.missing.is_empty() {
            f.push(format!("no webhook for: {}", self.missing.join(", ")));
        }
        f
    }
}

struct Ms(Duration);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_secs_f64() * 1000.0;
        if ms < 10.0 {
            write!(f, "{ms:.1} ms")
        } else {
            write!(f, "{ms:.0} ms")
        }
    }
}

fn latency_row(f: &mut fmt::Formatter<'_>, name: &str, l: Option<Latency>) -> fmt::Result {
    match l {
        Some(l) => writeln!(
            f,
            "{name:<34} p50 {}  p90 {}  p99 {}  max {}  (n = {})",
            Ms(l.p50),
            Ms(l.p90),
            Ms(l.p99),
            Ms(l.max),
            l.count
        ),
        None => writeln!(f, "{name:<34} no samples"),
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let broker = match self.broker {
            BrokerKind::Embedded => "embedded rumqttd",
            BrokerKind::Mosquitto => "Mosquitto",
        };
        writeln!(
            f,
            "rapport load: {} vehicles, {broker}, cloud {}, seed {}",
            self.vehicles, self.cloud, self.seed
        )?;
        let row = |f: &mut fmt::Formatter<'_>, k: &str, v: String| writeln!(f, "{k:<34} {v}");
        row(
            f,
            "phases (ramp / steady / drain)",
            format!(
                "{:.1} s / {:.1} s / {:.1} s",
                self.ramp.as_secs_f64(),
                self.steady.as_secs_f64(),
                self.drain.as_secs_f64()
            ),
        )?;
        row(
            f,
            "vehicles connected",
            format!(
                "{} of {} ({} reconnects, {} connection errors)",
                self.connected, self.vehicles, self.reconnects, self.connection_errors
            ),
        )?;
        row(
            f,
            "records sent / acked",
            format!(
                "{} / {} ({} publishes, {} acked; {} records resent)",
                self.records_sent,
                self.records_acked,
                self.publishes.0,
                self.publishes.1,
                self.records_resent
            ),
        )?;
        let c = &self.cloud_end;
        row(
            f,
            "cloud: records applied",
            format!(
                "{} ({} duplicates skipped, {} rejected, {} publishes, {} flushes, {} fleet errors)",
                c.applied, c.duplicates, c.rejects, c.messages, c.flushes, c.fleet_errors
            ),
        )?;
        row(
            f,
            "cloud: ingest rate (steady window)",
            format!(
                "{:.0} records/s applied (vehicles offered {:.0}/s)",
                self.ingest_rate(),
                self.offered_rate()
            ),
        )?;
        let (planned, injected, failed) = self.faults;
        row(
            f,
            "faults injected",
            format!("{injected} of {planned} planned ({failed} failed)"),
        )?;
        let w = &self.webhooks;
        row(
            f,
            "webhooks received (verified)",
            format!(
                "{} critical-fault matched, {} extra, {} unexpected, {} other; {} duplicates, {} rejected",
                w.critical_matched,
                w.critical_extra,
                w.critical_unexpected,
                w.other,
                w.duplicates,
                w.rejected
            ),
        )?;
        latency_row(f, "latency bus -> partner webhook", self.latency)?;
        latency_row(f, "  of which bus -> MQTT publish", self.agent_latency)?;
        match self.p99_met() {
            Some(true) => row(f, "target p99 <= 1 s", "met".into())?,
            Some(false) => row(f, "target p99 <= 1 s", "NOT met".into())?,
            None => {}
        }
        row(f, "downlinks received", self.downlinks.to_string())?;
        let failures = self.failures();
        if failures.is_empty() {
            row(
                f,
                "correctness",
                "every record acked and applied once; one verified webhook per fault".into(),
            )?;
        } else {
            for x in &failures {
                row(f, "FAILED", x.clone())?;
            }
        }
        for p in &self.problems {
            row(f, "problem", p.clone())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(Latency::of(Vec::new()), None);
        let one = Latency::of(vec![ms(7)]).unwrap();
        assert_eq!((one.p50, one.p99, one.max), (ms(7), ms(7), ms(7)));
        // 1..=100 ms shuffled: p50 = 50, p90 = 90, p99 = 99, max = 100.
        let samples: Vec<Duration> = (1..=100).rev().map(ms).collect();
        let l = Latency::of(samples).unwrap();
        assert_eq!(
            (l.count, l.p50, l.p90, l.p99, l.max),
            (100, ms(50), ms(90), ms(99), ms(100))
        );
        // Ten samples: p99 is the largest, p90 the ninth.
        let l = Latency::of((1..=10).map(ms).collect()).unwrap();
        assert_eq!((l.p90, l.p99), (ms(9), ms(10)));
    }

    fn report() -> LoadReport {
        LoadReport {
            vehicles: 2,
            broker: BrokerKind::Embedded,
            cloud: "in this process".into(),
            seed: 1,
            ramp: ms(10),
            steady: Duration::from_secs(2),
            drain: ms(10),
            connected: 2,
            reconnects: 0,
            connection_errors: 0,
            records_sent: 10,
            records_acked: 10,
            records_resent: 0,
            publishes: (5, 5),
            downlinks: 0,
            cloud_end: IngestCounters {
                applied: 10,
                ..IngestCounters::default()
            },
            steady_applied: 8,
            steady_offered: 8,
            faults: (1, 1, 0),
            webhooks: WebhookTally {
                attempts: 1,
                delivered: 1,
                critical_matched: 1,
                ..WebhookTally::default()
            },
            latency: Latency::of(vec![ms(30)]),
            agent_latency: Latency::of(vec![ms(1)]),
            missing: Vec::new(),
            problems: Vec::new(),
        }
    }

    #[test]
    fn a_correct_run_has_no_failures_and_prints_its_figures() {
        let r = report();
        assert!(r.failures().is_empty(), "{:?}", r.failures());
        assert!((r.ingest_rate() - 4.0).abs() < 1e-9);
        let text = r.to_string();
        assert!(text.contains("p50 30 ms"), "{text}");
        assert!(text.contains("target p99 <= 1 s"), "{text}");
        assert!(text.contains("met"), "{text}");
        assert!(!text.contains("FAILED"), "{text}");
    }

    #[test]
    fn each_kind_of_incorrectness_is_named() {
        let mut r = report();
        r.records_acked = 9;
        r.cloud_end.applied = 11;
        r.webhooks.critical_matched = 0;
        r.webhooks.duplicates = 1;
        r.missing = vec!["RPLD0000000000001 SPN110/FMI0".into()];
        let f = r.failures();
        assert_eq!(f.len(), 5, "{f:?}");
        assert!(f.iter().any(|x| x.contains("9 records acked of 10")));
        assert!(f.iter().any(|x| x.contains("applied 11 records of 10")));
        assert!(r.to_string().contains("FAILED"));
    }
}
