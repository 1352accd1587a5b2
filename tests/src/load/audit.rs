//! What a PostgreSQL store holds after a load run, read with SQL from the cloud's tables
//! (`cloud/migrations/0001_initial.sql`), against what the vehicles made and what the
//! partner's receiver verified: the end-to-end check of exactly once across instances,
//! kills and an outage of the database.
//!
//! Owns the queries and the verdict ([`Audit`]): every record a vehicle made is in the record
//! log once (`records.key` = the vehicle's row id · 2^36 + seq: per vehicle exactly the seqs
//! `1..=made`, no key twice); one alert per fault or story (no two alerts of one vehicle, kind
//! and subject); every alert whose time to be sent has come was delivered under its one id
//! `msg_a<id>`; every escalated alert escalated once (one `escalated` entry on its timeline)
//! and its `msg_a<id>_esc` was delivered; no open alert is past its SLA without escalating;
//! no layer change (same from and to) nor strategy action (same rule and campaign) twice on
//! one vehicle's timeline. Only the load mode's vehicles (VINs `RPLD…`) are read, so a
//! database that holds other vehicles is audited for this run alone.
//!
//! Every function here blocks (the synchronous client): call it on a blocking thread. Does not
//! own waiting ([`super::run`] repeats the audit during the drain until it passes).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;

/// The VIN pattern of the load mode's vehicles.
const LOAD_VINS: &str = "RPLD%";
/// Bits of a record key that hold the seq (`cloud/migrations/0001_initial.sql`).
const SEQ_BITS: u32 = 36;
/// How long the first connection may take.
const CONNECT_WAIT: Duration = Duration::from_secs(5);
/// Problems of one kind listed by name at most; the rest are counted.
const LIST: usize = 10;
/// How long after its SLA an open alert may still be waiting for the tick that escalates it.
const ESCALATION_SLACK_MS: u64 = 5_000;

/// What the store holds, and every way it is wrong.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// Load-mode vehicles in the store.
    pub vehicles: u64,
    /// Rows of theirs in the record log.
    pub records: u64,
    /// Distinct (vehicle, seq) keys among them.
    pub distinct_records: u64,
    /// Alerts of the load-mode vehicles: critical faults, maintenance, others.
    pub alerts: (u64, u64, u64),
    /// Alerts whose webhook was due (sent) / still waiting for its time.
    pub alerts_due: u64,
    /// See `alerts_due`.
    pub alerts_waiting: u64,
    /// Alerts escalated.
    pub escalated: u64,
    /// Open alerts whose SLA has not run out yet (they escalate later).
    pub escalations_pending: u64,
    /// The earliest SLA among `escalations_pending` (unix ms).
    pub next_escalation_ms: Option<u64>,
    /// Layer changes on the timelines (first placements included).
    pub layer_changes: u64,
    /// Campaigns the strategies sent (timeline entries).
    pub campaigns: u64,
    /// Every way the store is not what the run made, each named (the first few of a kind,
    /// then how many more).
    pub problems: Vec<String>,
}

/// The vehicle index of a load VIN (`RPLD` and 13 digits).
fn index_of(vin: &str) -> Option<usize> {
    vin.strip_prefix("RPLD")?.parse().ok()
}

fn connect(url: &str) -> Result<postgres::Client, String> {
    let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| format!("{e}"))?;
    config.connect_timeout(CONNECT_WAIT);
    config
        .connect(postgres::NoTls)
        .map_err(|e| format!("connecting: {e}"))
}

fn sql(what: &str) -> impl Fn(postgres::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Load-mode vehicles already in the database (from an earlier run): their seqs would be
/// duplicates of this run's. 0 when the schema is not there yet.
///
/// # Errors
/// The database cannot be reached or refuses.
pub(crate) fn earlier_vehicles(url: &str) -> Result<u64, String> {
    let mut c = connect(url)?;
    let exists: bool = c
        .query_one("SELECT to_regclass('vehicles') IS NOT NULL", &[])
        .map_err(sql("looking for the vehicles table"))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM vehicles WHERE vin LIKE $1 AND state IS NOT NULL",
            &[&LOAD_VINS],
        )
        .map_err(sql("counting load vehicles"))?
        .get(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Distinct records of the load-mode vehicles in the record log.
///
/// # Errors
/// The database cannot be reached or refuses.
pub(crate) fn applied(url: &str) -> Result<u64, String> {
    let mut c = connect(url)?;
    let n: i64 = c
        .query_one(
            "SELECT count(DISTINCT r.key) FROM records r \
             JOIN vehicles v ON (r.key >> 36) = v.id::int8 WHERE v.vin LIKE $1",
            &[&LOAD_VINS],
        )
        .map_err(sql("counting records"))?
        .get(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Audits the store at `url` against `made` (records per vehicle index) and the webhook ids
/// the receiver verified, at `now_ms` (unix ms).
///
/// # Errors
/// The database cannot be reached or refuses (the audit itself never fails: what is wrong
/// goes into [`Audit::problems`]).
pub fn audit(
    url: &str,
    made: &[u64],
    delivered: &HashSet<String>,
    now_ms: u64,
) -> Result<Audit, String> {
    let mut c = connect(url)?;
    let mut a = Audit::default();
    let mut problems = Problems::default();
    records(&mut c, made, &mut a, &mut problems)?;
    alerts(&mut c, delivered, now_ms, &mut a, &mut problems)?;
    timeline(&mut c, &mut a, &mut problems)?;
    a.problems = problems.into_vec();
    Ok(a)
}

/// Problems by kind: the first [`LIST`] named, the rest counted.
#[derive(Default)]
struct Problems(Vec<(&'static str, Vec<String>, u64)>);

impl Problems {
    fn add(&mut self, kind: &'static str, text: String) {
        let i = match self.0.iter().position(|(k, _, _)| *k == kind) {
            Some(i) => i,
            None => {
                self.0.push((kind, Vec::new(), 0));
                self.0.len() - 1
            }
        };
        if let Some((_, named, more)) = self.0.get_mut(i) {
            if named.len() < LIST {
                named.push(text);
            } else {
                *more += 1;
            }
        }
    }

    fn into_vec(self) -> Vec<String> {
        let mut out = Vec::new();
        for (kind, named, more) in self.0 {
            out.extend(named);
            if more > 0 {
                out.push(format!("... and {more} more: {kind}"));
            }
        }
        out
    }
}

fn records(
    c: &mut postgres::Client,
    made: &[u64],
    a: &mut Audit,
    p: &mut Problems,
) -> Result<(), String> {
    let mask: i64 = (1 << SEQ_BITS) - 1;
    let rows = c
        .query(
            "SELECT v.vin, count(r.key), count(DISTINCT r.key), \
                    coalesce(min(r.key & $2), 0), coalesce(max(r.key & $2), 0) \
             FROM vehicles v LEFT JOIN records r ON (r.key >> 36) = v.id::int8 \
             WHERE v.vin LIKE $1 GROUP BY v.vin",
            &[&LOAD_VINS, &mask],
        )
        .map_err(sql("reading the record log"))?;
    let mut seen = vec![false; made.len()];
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    for row in rows {
        let vin: String = row.get(0);
        let (count, distinct, min, max) =
            (n(row.get(1)), n(row.get(2)), n(row.get(3)), n(row.get(4)));
        a.vehicles += 1;
        a.records += count;
        a.distinct_records += distinct;
        let Some(i) = index_of(&vin).filter(|i| *i < made.len()) else {
            if count > 0 {
                p.add(
                    "records of vehicles this run did not simulate",
                    format!("{vin}: {count} records, not a vehicle of this run"),
                );
            }
            continue;
        };
        seen[i] = true;
        let m = made[i];
        let exact = count == m && distinct == m && (m == 0 || (min == 1 && max == m));
        if !exact {
            p.add(
                "vehicles whose records are not each seq once",
                format!(
                    "{vin}: {count} records ({distinct} distinct, seqs {min}..{max}) of the \
                     {m} it made"
                ),
            );
        }
    }
    for (i, m) in made.iter().enumerate() {
        if *m > 0 && !seen[i] {
            p.add(
                "vehicles missing from the store",
                format!("RPLD{i:013}: none of its {m} records in the store"),
            );
        }
    }
    Ok(())
}

/// An alert row, from its JSON body.
struct AlertRow {
    id: u64,
    vin: String,
    kind: String,
    subject: String,
    state: String,
    send_at: u64,
    sla_due: u64,
    escalated: bool,
}

fn alerts(
    c: &mut postgres::Client,
    delivered: &HashSet<String>,
    now_ms: u64,
    a: &mut Audit,
    p: &mut Problems,
) -> Result<(), String> {
    let rows = c
        .query(
            "SELECT id, vin, body::text FROM alerts WHERE vin LIKE $1 ORDER BY id",
            &[&LOAD_VINS],
        )
        .map_err(sql("reading alerts"))?;
    let mut by_subject: HashMap<(String, String, String), Vec<u64>> = HashMap::new();
    for row in rows {
        let id: i64 = row.get(0);
        let vin: String = row.get(1);
        let body: String = row.get(2);
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let num = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        let alert = AlertRow {
            id: u64::try_from(id).unwrap_or(0),
            vin,
            kind: text("kind"),
            subject: text("subject"),
            state: text("state"),
            send_at: num("send_at"),
            sla_due: num("sla_due"),
            escalated: v.get("escalated").is_some_and(|e| !e.is_null()),
        };
        match alert.kind.as_str() {
            "critical_fault" => a.alerts.0 += 1,
            "maintenance" => a.alerts.1 += 1,
            _ => a.alerts.2 += 1,
        }
        by_subject
            .entry((alert.vin.clone(), alert.kind.clone(), alert.subject.clone()))
            .or_default()
            .push(alert.id);
        let first = format!("msg_a{}", alert.id);
        if alert.send_at <= now_ms {
            a.alerts_due += 1;
            if !delivered.contains(&first) {
                p.add(
                    "alerts whose webhook did not arrive",
                    format!(
                        "alert {} ({} {} of {}): its webhook {first} was due and did not arrive",
                        alert.id, alert.kind, alert.subject, alert.vin
                    ),
                );
            }
        } else {
            a.alerts_waiting += 1;
        }
        if alert.escalated {
            a.escalated += 1;
            let esc = format!("msg_a{}_esc", alert.id);
            if !delivered.contains(&esc) {
                p.add(
                    "escalations whose webhook did not arrive",
                    format!(
                        "alert {} of {} escalated; {esc} did not arrive",
                        alert.id, alert.vin
                    ),
                );
            }
        } else if alert.state == "open" && alert.send_at <= now_ms {
            if alert.sla_due + ESCALATION_SLACK_MS <= now_ms {
                p.add(
                    "open alerts past their SLA that did not escalate",
                    format!(
                        "alert {} of {} is open {:.1} s past its SLA and did not escalate",
                        alert.id,
                        alert.vin,
                        (now_ms - alert.sla_due) as f64 / 1000.0
                    ),
                );
            } else {
                a.escalations_pending += 1;
                a.next_escalation_ms = Some(
                    a.next_escalation_ms
                        .map_or(alert.sla_due, |t| t.min(alert.sla_due)),
                );
            }
        }
    }
    for ((vin, kind, subject), list) in by_subject {
        if list.len() > 1 {
            p.add(
                "alerts raised twice",
                format!(
                    "{vin}: {} alerts for {kind} {subject} (ids {list:?})",
                    list.len()
                ),
            );
        }
    }
    Ok(())
}

fn timeline(c: &mut postgres::Client, a: &mut Audit, p: &mut Problems) -> Result<(), String> {
    let rows = c
        .query(
            "SELECT v.vin, t.entry::text FROM timeline t JOIN vehicles v ON v.id = t.vehicle \
             WHERE v.vin LIKE $1 AND t.entry->>'kind' IN ('layer', 'strategy', 'alert')",
            &[&LOAD_VINS],
        )
        .map_err(sql("reading the timelines"))?;
    let mut layers: HashMap<(String, String, String), u32> = HashMap::new();
    let mut actions: HashMap<(String, String, String), u32> = HashMap::new();
    let mut escalations: HashMap<(String, u64), u32> = HashMap::new();
    for row in rows {
        let vin: String = row.get(0);
        let entry: String = row.get(1);
        let v: Value = serde_json::from_str(&entry).unwrap_or_default();
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        match text("kind").as_str() {
            "layer" => {
                a.layer_changes += 1;
                let side = |k: &str| v.get(k).map(Value::to_string).unwrap_or_default();
                *layers.entry((vin, side("from"), side("to"))).or_default() += 1;
            }
            "strategy" => {
                let action = text("action");
                if action.starts_with("campaign ") {
                    a.campaigns += 1;
                }
                // A campaign's downlink id differs between two sends: compare without it.
                let what = action
                    .split(" (downlink ")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                *actions.entry((vin, text("rule"), what)).or_default() += 1;
            }
            "alert" if text("event") == "escalated" => {
                let id = v.get("id").and_then(Value::as_u64).unwrap_or(0);
                *escalations.entry((vin, id)).or_default() += 1;
            }
            _ => {}
        }
    }
    for ((vin, from, to), n) in layers {
        if n > 1 {
            p.add(
                "layer changes recorded twice",
                format!("{vin}: the layer change {from} -> {to} is on its timeline {n} times"),
            );
        }
    }
    for ((vin, rule, what), n) in actions {
        if n > 1 {
            p.add(
                "strategy actions recorded twice",
                format!("{vin}: rule {rule} did \"{what}\" {n} times"),
            );
        }
    }
    let mut entries = 0;
    for ((vin, id), n) in escalations {
        entries += 1;
        if n > 1 {
            p.add(
                "escalations recorded twice",
                format!("{vin}: alert {id} escalated {n} times on its timeline"),
            );
        }
    }
    if entries != a.escalated {
        p.add(
            "escalations the timelines and the alerts disagree on",
            format!(
                "{} alerts escalated, {entries} alerts have an escalation on their timeline",
                a.escalated
            ),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_vins_map_back_to_their_index() {
        assert_eq!(index_of("RPLD0000000000042"), Some(42));
        assert_eq!(index_of("WVWZZZ1KZ8W012345"), None);
    }

    #[test]
    fn problems_name_the_first_few_of_a_kind_and_count_the_rest() {
        let mut p = Problems::default();
        for i in 0..13 {
            p.add("twice", format!("x{i}"));
        }
        p.add("missing", "y".into());
        let v = p.into_vec();
        assert_eq!(v.len(), LIST + 2);
        assert_eq!(v[LIST], "... and 3 more: twice");
        assert_eq!(v[LIST + 1], "y");
    }
}
