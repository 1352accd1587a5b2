//! `rapport-agent store`: what the agent remembers and what waits for the cloud, as JSON lines
//! — for an engineer at a head unit, and for the power-loss tests. Opens the store like the
//! agent does (so it needs the agent stopped: sled locks its files).
//!
//! Lines: `{"kind":"vehicle",…}`, one `{"kind":"prompt","id":…,"state":…}` per prompt, one
//! `{"kind":"dtc",…}` per fault history, one `{"kind":"item",…}` per maintenance item, one
//! `{"kind":"service_case","alert_id":…,"stage":…,"step":…,"closed":…}` per service case, and one
//! `{"kind":"outbox","seq":…,"t_ms":…,"record":"<hex of the encoded record>","text":…}` per
//! record waiting for the cloud.

use std::io::Write;
use std::path::Path;

use rapport_shared::v1::uplink::{PromptAction, RecordBody};
use serde_json::json;

use crate::memory::PromptState;
use crate::store::{Store, StoreOptions};

/// A record in words: `prompt <id> <action>`, `odometer <km>`, `dtc_appeared <code>`, ….
pub(crate) fn describe(body: &RecordBody) -> String {
    match body {
        RecordBody::Odometer(o) => format!("odometer {:.3}", o.odometer.km()),
        RecordBody::EngineHours(h) => format!("engine_hours {:.2}", h.hours.hours()),
        RecordBody::DtcAppeared(d) => {
            format!("dtc_appeared {} {}", d.dtc.code(), d.severity.as_str())
        }
        RecordBody::DtcCleared(d) => format!("dtc_cleared {}", d.dtc.code()),
        RecordBody::DtcSnapshot(s) => format!("dtc_snapshot {} active", s.active.len()),
        RecordBody::Maintenance(m) => format!("maintenance {} {:?}", m.item, m.status),
        RecordBody::Prompt(p) => {
            let action = match p.action {
                PromptAction::Shown => "shown",
                PromptAction::Acknowledged => "acknowledged",
                PromptAction::Snoozed { .. } => "snoozed",
                PromptAction::Dismissed => "dismissed",
                PromptAction::Booked => "booked",
            };
            format!("prompt {} {action}", p.prompt)
        }
        RecordBody::Consent(c) => format!("consent {} {}", c.consent, c.granted),
        RecordBody::Heartbeat(h) => format!("heartbeat depth={}", h.outbox_depth),
        RecordBody::WipeConfirmed(w) => format!("wipe_confirmed downlink={}", w.downlink),
        RecordBody::ServiceAnswer(a) => format!("service_answer {} {}", a.alert_id, a.answer),
        _ => "unknown".to_owned(),
    }
}

fn state_name(s: PromptState) -> &'static str {
    s.as_str()
}

/// Writes the dump of the store in `dir` to `out`.
///
/// # Errors
/// The store cannot be opened, or writing fails.
pub fn dump(dir: &Path, out: &mut impl Write) -> Result<(), crate::Error> {
    let io = |source| crate::Error::Io {
        context: "writing the dump".into(),
        source,
    };
    let (store, memory) = Store::open(
        dir,
        StoreOptions {
            max_outbox: u64::MAX,
            flush_every_ms: None,
            ..StoreOptions::default()
        },
    )?;
    let v = &memory.vehicle;
    writeln!(
        out,
        "{}",
        json!({
            "kind": "vehicle",
            "odometer_km": v.odometer.map(|o| o.km()),
            "engine_hours": v.engine_hours.map(|h| h.hours()),
            "mil": v.mil,
            "first_seen_ms": v.first_seen.map(|t| t.as_millis()),
            "services": memory.services.len(),
            "outbox": store.outbox_len(),
            "next_seq": store.next_seq(),
            "downlinks_applied": memory.applied_downlinks,
            "settings_default": memory.settings == crate::memory::Settings::default(),
        })
    )
    .map_err(io)?;
    for (code, h) in &memory.dtcs {
        writeln!(
            out,
            "{}",
            json!({"kind": "dtc", "code": code.to_string(), "severity": h.severity.as_str(),
                   "active": h.active, "times_seen": h.times_seen,
                   "first_seen_ms": h.first_seen.as_millis(), "last_seen_ms": h.last_seen.as_millis()})
        )
        .map_err(io)?;
    }
    for (id, item) in &memory.items {
        writeln!(
            out,
            "{}",
            json!({"kind": "item", "id": id, "services": item.services,
                   "reported": item.reported.map(|(c, s)| format!("{c}:{}", s.as_str()))})
        )
        .map_err(io)?;
    }
    for p in memory.prompts.values() {
        writeln!(
            out,
            "{}",
            json!({"kind": "prompt", "id": p.id, "state": state_name(p.state),
                   "critical": p.critical, "times_shown": p.times_shown})
        )
        .map_err(io)?;
    }
    for (id, c) in &memory.service_cases {
        writeln!(
            out,
            "{}",
            json!({"kind": "service_case", "alert_id": id,
                   "stage": c.latest().map(|p| p.stage.name()), "step": c.latest().map(|p| p.step),
                   "closed": c.is_closed(), "answers": c.answers.len()})
        )
        .map_err(io)?;
    }
    let mut from = 0;
    loop {
        let batch = store.outbox_from(from, 1024)?;
        let Some(last) = batch.last() else { break };
        from = last.seq.saturating_add(1);
        for r in &batch {
            let bytes = r.encode()?;
            writeln!(
                out,
                "{}",
                json!({"kind": "outbox", "seq": r.seq, "t_ms": r.at.as_millis(),
                       "record": rapport_shared::hex::encode(&bytes), "text": describe(&r.body)})
            )
            .map_err(io)?;
        }
    }
    out.flush().map_err(io)
}
