//! What a load run measured ([`LoadReport`]), its table form (`Display`), the latency
//! percentiles ([`Latency`]) and the correctness verdict ([`LoadReport::failures`]).
//!
//! Owns the arithmetic (nearest-rank percentiles, rates over the steady window) and the
//! wording. Does not own measuring ([`super::run`]) nor the store's audit
//! ([`super::audit`], whose problems it lists).

use core::fmt;
use std::time::Duration;

use super::audit::Audit;
use super::chaos::ChaosLog;
use super::cloud::{BrokerKind, IngestCounters};
use super::instances::InstanceFigures;

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
    /// `alert.maintenance_due` deliveries for a maintenance story's VIN and item (first per
    /// VIN).
    pub maintenance_matched: u64,
    /// `alert.escalated` deliveries (`msg_a<id>_esc`) of an alert delivered here and not
    /// answered (a critical fault, a maintenance story not serviced).
    pub escalated_matched: u64,
    /// Alerts delivered here that nobody answers (each escalates once its SLA runs out).
    pub unanswered: u64,
    /// Maintenance and escalation deliveries the run did not cause (another VIN, a second
    /// alert for one story, an escalation of an answered alert or of one never delivered).
    pub unexpected: u64,
    /// Deliveries of other event types.
    pub other: u64,
}

/// The maintenance stories: planned, and each step the vehicles sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaintenanceTally {
    /// Stories planned (one per vehicle).
    pub planned: u64,
    /// Of which to be serviced.
    pub serviced_planned: u64,
    /// Steps sent: fell due, booked, serviced.
    pub due: u64,
    /// See `due`.
    pub booked: u64,
    /// See `due`.
    pub serviced: u64,
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
    /// Its store.
    pub store: String,
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
    /// Records each vehicle made, by index (its seqs are `1..=made`).
    pub made: Vec<u64>,
    /// Records whose publish the broker acknowledged.
    pub records_acked: u64,
    /// Records sent again after a lost session.
    pub records_resent: u64,
    /// Publishes made / acknowledged.
    pub publishes: (u64, u64),
    /// Downlinks received by the vehicles.
    pub downlinks: u64,
    /// Downlink messages a vehicle received again (same id; the agent applies an id once).
    pub downlink_repeats: u64,
    /// Downlinks that did not decode.
    pub downlink_errors: u64,
    /// The cloud's counters at the end, summed over instances (and over the incarnations of
    /// a killed one: then `applied` is a lower bound).
    pub cloud_end: IngestCounters,
    /// What each instance did.
    pub instances: Vec<InstanceFigures>,
    /// Records the cloud applied during the steady window.
    pub steady_applied: u64,
    /// Records the vehicles made during the steady window.
    pub steady_offered: u64,
    /// Faults planned / put on a bus / that failed to inject.
    pub faults: (usize, u64, u64),
    /// The maintenance stories.
    pub maintenance: MaintenanceTally,
    /// Whether the SLA was short enough for every unanswered alert to escalate in the run.
    pub escalations_expected: bool,
    /// What the partner received.
    pub webhooks: WebhookTally,
    /// The ids of the webhooks the partner verified and took (`msg_a<alert>`,
    /// `msg_a<alert>_esc`), first delivery each.
    pub webhook_ids: Vec<String>,
    /// Bus → verified webhook at the partner, per injected fault that arrived.
    pub latency: Option<Latency>,
    /// Bus → publish handed to MQTT (the simulated agent's share).
    pub agent_latency: Option<Latency>,
    /// Injected faults and stories with no webhook by the end of the drain (`VIN code`).
    pub missing: Vec<String>,
    /// What the chaos did.
    pub chaos: ChaosLog,
    /// What the PostgreSQL store holds, checked against the run (`None` on sled).
    pub audit: Option<Audit>,
    /// The layer matrix from each instance still running at the end (its number, the
    /// answers by service and by car maturity), or why it could not be read.
    pub matrices: Vec<(usize, Result<String, String>)>,
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

    /// Records the cloud applied: the store's count of distinct (vehicle, seq) on
    /// PostgreSQL (exact whatever was killed), else the instances' counters.
    pub fn applied(&self) -> u64 {
        self.audit
            .as_ref()
            .map_or(self.cloud_end.applied, |a| a.distinct_records)
    }

    /// Whether every instance answered the same layer matrix (`None` with fewer than two
    /// answers).
    pub fn matrices_agree(&self) -> Option<bool> {
        let answers: Vec<&String> = self
            .matrices
            .iter()
            .filter_map(|(_, m)| m.as_ref().ok())
            .collect();
        (answers.len() >= 2).then(|| answers.windows(2).all(|w| w[0] == w[1]))
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
        if self.applied() != self.records_sent {
            f.push(format!(
                "the cloud applied {} records of {} sent",
                self.applied(),
                self.records_sent
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
        // A delivery again under the same id is what a sender killed between the partner's
        // answer and its record does (at least once, one id): allowed when instances were
        // killed, a failure otherwise.
        let duplicates = if self.chaos.kills > 0 {
            0
        } else {
            w.duplicates
        };
        if w.critical_extra + w.critical_unexpected + w.unexpected + duplicates + w.rejected != 0 {
            f.push(format!(
                "webhooks: {} extra and {} unexpected critical-fault alerts, {} other unexpected \
                 alerts or escalations, {} duplicates, {} rejected",
                w.critical_extra, w.critical_unexpected, w.unexpected, w.duplicates, w.rejected
            ));
        }
        let m = &self.maintenance;
        if (m.due, m.booked, m.serviced) != (m.planned, m.planned, m.serviced_planned) {
            f.push(format!(
                "maintenance stories: {} fell due, {} booked, {} serviced of {} planned ({} to be \
                 serviced)",
                m.due, m.booked, m.serviced, m.planned, m.serviced_planned
            ));
        }
        if w.maintenance_matched != m.planned {
            f.push(format!(
                "{} maintenance webhooks matched of {} stories",
                w.maintenance_matched, m.planned
            ));
        }
        let escalations = if self.escalations_expected {
            w.unanswered
        } else {
            0
        };
        if w.escalated_matched != escalations {
            f.push(format!(
                "{} escalations arrived, {escalations} expected{}",
                w.escalated_matched,
                if self.escalations_expected {
                    " (every alert nobody answered)"
                } else {
                    " (the SLA is longer than the run)"
                }
            ));
        }
        if !self.missing.is_empty() {
            f.push(format!("no webhook for: {}", self.missing.join(", ")));
        }
        if self.downlink_errors != 0 {
            f.push(format!("{} downlinks did not decode", self.downlink_errors));
        }
        for i in &self.instances {
            if let Some((at, log)) = &i.exited {
                f.push(format!(
                    "instance {} exited by itself at +{:.1} s (it was not killed); the end of its \
                     log ({}):\n{log}",
                    i.number,
                    at.as_secs_f64(),
                    i.log.display()
                ));
            }
        }
        f.extend(self.chaos.failures.iter().map(|x| format!("chaos: {x}")));
        if let Some(a) = &self.audit {
            f.extend(a.problems.iter().map(|x| format!("store: {x}")));
        }
        for (i, m) in &self.matrices {
            if let Err(e) = m {
                f.push(format!("instance {i}: the layer matrix: {e}"));
            }
        }
        if self.matrices_agree() == Some(false) {
            f.push("the instances answer different layer matrices".into());
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
            "rapport load: {} vehicles, {broker}, cloud {}, store {}, seed {}",
            self.vehicles, self.cloud, self.store, self.seed
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
                "{} ({} duplicates skipped, {} rejected, {} publishes, {} flushes, {} fleet \
                 errors)",
                self.applied(),
                c.duplicates,
                c.rejects,
                c.messages,
                c.flushes,
                c.fleet_errors
            ),
        )?;
        if self.instances.len() > 1 || self.instances.iter().any(|i| i.kills > 0) {
            for i in &self.instances {
                let at_least = if i.kills > 0 { "at least " } else { "" };
                let mut text = format!(
                    "{at_least}{} records applied, {} duplicates skipped ({}; {} kills, {} starts)",
                    i.applied, i.duplicates, i.client_id, i.kills, i.starts
                );
                if i.store_outages + i.store_retries > 0 {
                    text.push_str(&format!(
                        "; {} store outages, {} ingest retries",
                        i.store_outages, i.store_retries
                    ));
                }
                for (down, up) in i
                    .store_down
                    .iter()
                    .zip(i.store_up.iter().map(Some).chain(std::iter::repeat(None)))
                {
                    text.push_str(&format!(
                        "; store down at +{:.1} s, {}",
                        down.as_secs_f64(),
                        up.map_or("not up again".into(), |u| format!(
                            "up at +{:.1} s",
                            u.as_secs_f64()
                        ))
                    ));
                }
                if let Some((at, _)) = &i.exited {
                    text.push_str(&format!("; EXITED by itself at +{:.1} s", at.as_secs_f64()));
                }
                row(f, &format!("  instance {}", i.number), text)?;
            }
            let sum: u64 = self.instances.iter().map(|i| i.applied).sum();
            row(
                f,
                "  sum of the instances",
                format!(
                    "{sum} (the store holds {}; what a killed instance applied after its last \
                     read of /metrics is not in its counters)",
                    self.applied()
                ),
            )?;
        }
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
        let m = &self.maintenance;
        if m.planned > 0 {
            row(
                f,
                "maintenance stories",
                format!(
                    "{} planned: {} fell due, {} booked, {} serviced",
                    m.planned, m.due, m.booked, m.serviced
                ),
            )?;
        }
        let w = &self.webhooks;
        row(
            f,
            "webhooks received (verified)",
            format!(
                "{} critical-fault matched, {} extra, {} unexpected; {} maintenance matched; {} \
                 escalations matched of {} unanswered alerts{}; {} other unexpected, {} other; {} \
                 ids delivered, {} duplicates, {} rejected",
                w.critical_matched,
                w.critical_extra,
                w.critical_unexpected,
                w.maintenance_matched,
                w.escalated_matched,
                w.unanswered,
                if self.escalations_expected {
                    ""
                } else {
                    " (SLA longer than the run)"
                },
                w.unexpected,
                w.other,
                w.delivered,
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
        row(
            f,
            "downlinks received",
            format!(
                "{} ({} message ids again)",
                self.downlinks, self.downlink_repeats
            ),
        )?;
        for line in &self.chaos.lines {
            row(f, "chaos", line.clone())?;
        }
        if let Some(a) = &self.audit {
            row(
                f,
                "store: records",
                format!(
                    "{} rows, {} distinct (vehicle, seq) of {} vehicles",
                    a.records, a.distinct_records, a.vehicles
                ),
            )?;
            row(
                f,
                "store: alerts",
                format!(
                    "{} critical, {} maintenance, {} other; {} sent, {} waiting; {} escalated, {} \
                     to escalate",
                    a.alerts.0,
                    a.alerts.1,
                    a.alerts.2,
                    a.alerts_due,
                    a.alerts_waiting,
                    a.escalated,
                    a.escalations_pending
                ),
            )?;
            row(
                f,
                "store: timelines",
                format!(
                    "{} layer changes, {} campaigns",
                    a.layer_changes, a.campaigns
                ),
            )?;
        }
        match self.matrices_agree() {
            Some(true) => row(
                f,
                "layer matrix",
                format!("the same from all {} instances", self.matrices.len()),
            )?,
            Some(false) => row(f, "layer matrix", "DIFFERS between instances".into())?,
            None => {}
        }
        let failures = self.failures();
        if failures.is_empty() {
            row(
                f,
                "correctness",
                "every record acked and applied once; one verified webhook per alert; each \
                 escalation once"
                    .into(),
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

/// The machine's load for a measurement's report: `uptime`'s line, or `/proc/loadavg`, or
/// empty (benchmarks print it: figures from a shared machine carry its load).
pub fn machine_load() -> String {
    std::process::Command::new("uptime")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .or_else(|| std::fs::read_to_string("/proc/loadavg").ok())
        .unwrap_or_default()
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
            store: "sled".into(),
            seed: 1,
            ramp: ms(10),
            steady: Duration::from_secs(2),
            drain: ms(10),
            connected: 2,
            reconnects: 0,
            connection_errors: 0,
            records_sent: 10,
            made: vec![5, 5],
            records_acked: 10,
            records_resent: 0,
            publishes: (5, 5),
            downlinks: 0,
            downlink_repeats: 0,
            downlink_errors: 0,
            cloud_end: IngestCounters {
                applied: 10,
                ..IngestCounters::default()
            },
            instances: Vec::new(),
            steady_applied: 8,
            steady_offered: 8,
            faults: (1, 1, 0),
            maintenance: MaintenanceTally::default(),
            escalations_expected: false,
            webhooks: WebhookTally {
                attempts: 1,
                delivered: 1,
                critical_matched: 1,
                ..WebhookTally::default()
            },
            webhook_ids: vec!["msg_a1".into()],
            latency: Latency::of(vec![ms(30)]),
            agent_latency: Latency::of(vec![ms(1)]),
            missing: Vec::new(),
            chaos: ChaosLog::default(),
            audit: None,
            matrices: Vec::new(),
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

    #[test]
    fn a_multi_instance_run_is_judged_on_the_store_and_the_instances() {
        let mut r = report();
        r.cloud_end.applied = 7; // a killed instance's last counters lag behind
        r.audit = Some(Audit {
            distinct_records: 10,
            ..Audit::default()
        });
        r.chaos.kills = 1;
        r.webhooks.duplicates = 1; // one id again after a kill: allowed
        r.matrices = vec![(1, Ok("m".into())), (2, Ok("m".into()))];
        assert!(r.failures().is_empty(), "{:?}", r.failures());
        assert_eq!(r.applied(), 10);
        r.matrices.push((3, Ok("other".into())));
        r.audit = Some(Audit {
            distinct_records: 10,
            problems: vec!["RPLD0000000000001: 3 records (2 distinct)".into()],
            ..Audit::default()
        });
        r.escalations_expected = true;
        r.webhooks.unanswered = 1;
        let f = r.failures();
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f.iter().any(|x| x.contains("different layer matrices")));
        assert!(f.iter().any(|x| x.starts_with("store: RPLD")));
        assert!(
            f.iter()
                .any(|x| x.contains("0 escalations arrived, 1 expected"))
        );
    }
}
