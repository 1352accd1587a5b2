//! The end of the story in one table per party: each vehicle (what its car really did, what
//! its agent and the cloud know, what its driver saw and did, its layers), each partner (what
//! it received and answered, and the share of its service promises kept over the story, as
//! the cloud's `GET /api/v1/promises` reports it) and the cloud (records, duplicates, alerts,
//! downlinks).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::Testbed;
use super::story::What;

/// One vehicle's line.
#[derive(Debug, Clone)]
pub struct VehicleLine {
    /// Driver's name.
    pub driver: String,
    /// VIN.
    pub vin: String,
    /// Protocols read.
    pub protocols: &'static str,
    /// The car's true odometer at the end, km.
    pub truth_km: f64,
    /// What the agent believes, km.
    pub agent_km: Option<f64>,
    /// What the cloud has, km.
    pub cloud_km: Option<f64>,
    /// Prompts shown to the driver.
    pub prompts: usize,
    /// Driver actions taken.
    pub actions: usize,
    /// Records the cloud applied.
    pub records: u64,
    /// Frames on the virtual bus.
    pub frames: u64,
    /// Layers at the end (`car/service/activity/lifecycle`).
    pub layers: String,
}

/// One partner's line.
#[derive(Debug, Clone)]
pub struct PartnerLine {
    /// Id.
    pub id: String,
    /// Verified webhooks received.
    pub received: u64,
    /// Stage moves the API accepted.
    pub reported: u64,
    /// Its promises kept and missed over the story (`None`: the API gave no row).
    pub promises: Option<(u64, u64)>,
}

/// The promises column: `7/8 (88 %)` (kept of settled, the share rounded half up), `-` when
/// none settled or the API gave no row.
pub fn promises_cell(promises: Option<(u64, u64)>) -> String {
    match promises {
        Some((kept, missed)) if kept + missed > 0 => {
            let settled = kept + missed;
            let pct = (kept * 100 + settled / 2) / settled;
            format!("{kept}/{settled} ({pct} %)")
        }
        _ => "-".to_owned(),
    }
}

/// Kept and missed per partner, from the body of `GET /api/v1/promises` (rows without both
/// counts are left out).
pub fn promises_by_partner(api: &serde_json::Value) -> BTreeMap<String, (u64, u64)> {
    api["partners"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| {
                    Some((
                        r["partner"].as_str()?.to_owned(),
                        (r["kept"].as_u64()?, r["missed"].as_u64()?),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The summary.
#[derive(Debug, Clone)]
pub struct Report {
    /// Per vehicle.
    pub vehicles: Vec<VehicleLine>,
    /// Per partner.
    pub partners: Vec<PartnerLine>,
    /// Records applied by the cloud.
    pub records_applied: u64,
    /// Duplicates dropped by the cloud.
    pub duplicates: u64,
    /// Downlinks the cloud published.
    pub downlinks: u64,
    /// Webhooks delivered / dead-lettered.
    pub webhooks_delivered: u64,
    /// Dead letters.
    pub dead_letters: u64,
    /// Signatures the receivers refused.
    pub bad_signatures: u64,
    /// Services recorded by workshops.
    pub services: u64,
    /// Layer changes seen.
    pub layer_changes: usize,
    /// Simulated days.
    pub days: u32,
    /// Real seconds taken.
    pub real_s: f64,
}

impl Report {
    /// Reads the testbed's state; `promises` is the cloud's `GET /api/v1/promises` over the
    /// story's window (null when it could not be read).
    pub fn build(bed: &Testbed, promises: &serde_json::Value) -> Self {
        let promises = promises_by_partner(promises);
        let mut vehicles = Vec::new();
        for v in &bed.vehicles {
            let vin = v.vin();
            let (truth_m, frames) = bed.truth(&vin);
            let agent_km = v
                .core
                .with(|r, _| r.memory().vehicle.odometer)
                .map(|o| o.meters() as f64 / 1000.0);
            let state = bed.cloud.store().vehicle(&vin).ok().flatten();
            let cloud_km = state
                .as_ref()
                .and_then(|s| s.odometer.as_ref())
                .map(|r| r.value as f64 / 1000.0);
            let records = state.as_ref().map_or(0, |s| s.applied.through());
            let mine = |f: fn(&What) -> bool| {
                bed.events
                    .iter()
                    .filter(|e| e.vin == Some(vin) && f(&e.what))
                    .count()
            };
            let layers = bed.cloud.fleet().layers_of(&vin).map_or_else(
                || "-".to_owned(),
                |l| {
                    format!(
                        "{}/{}/{}/{}",
                        l.car.as_str(),
                        l.service.as_str(),
                        l.activity.as_str(),
                        l.lifecycle.as_str()
                    )
                },
            );
            vehicles.push(VehicleLine {
                driver: v.cast.driver.clone(),
                vin: vin.to_string(),
                protocols: v.cast.kind.protocols(),
                truth_km: truth_m as f64 / 1000.0,
                agent_km,
                cloud_km,
                prompts: mine(|w| matches!(w, What::PromptShown { .. })),
                actions: mine(|w| matches!(w, What::DriverActed { accepted: true, .. })),
                records,
                frames,
                layers,
            });
        }
        let partners = bed
            .partners
            .ids()
            .into_iter()
            .map(|id| PartnerLine {
                id: id.to_owned(),
                received: bed.partners.received.get(id).copied().unwrap_or(0),
                reported: bed.partners.reported.get(id).copied().unwrap_or(0),
                promises: promises.get(id).copied(),
            })
            .collect();
        let m = bed.cloud.metrics();
        Self {
            vehicles,
            partners,
            records_applied: m.records_applied.load(Ordering::Relaxed),
            duplicates: m.duplicates.load(Ordering::Relaxed),
            downlinks: m.downlinks.load(Ordering::Relaxed),
            webhooks_delivered: bed.cloud.webhook_counters().delivered(),
            dead_letters: bed.cloud.webhook_counters().dead(),
            bad_signatures: bed.partners.rejected(),
            services: bed.partners.services,
            layer_changes: bed
                .events
                .iter()
                .filter(|e| matches!(&e.what, What::LayerChanged { from, .. } if !from.is_empty()))
                .count(),
            days: bed.options.days,
            real_s: bed.elapsed().as_secs_f64(),
        }
    }

    /// The tables as text.
    pub fn render(&self) -> String {
        let km = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |k| format!("{k:.1}"));
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\n{:<8} {:<17} {:<18} {:>10} {:>10} {:>10} {:>7} {:>7} {:>7} {:>9}  layers (car/service/activity/lifecycle)",
            "driver",
            "VIN",
            "reads",
            "car km",
            "agent km",
            "cloud km",
            "prompts",
            "actions",
            "records",
            "frames"
        );
        for v in &self.vehicles {
            let _ = writeln!(
                s,
                "{:<8} {:<17} {:<18} {:>10.1} {:>10} {:>10} {:>7} {:>7} {:>7} {:>9}  {}",
                v.driver,
                v.vin,
                v.protocols,
                v.truth_km,
                km(v.agent_km),
                km(v.cloud_km),
                v.prompts,
                v.actions,
                v.records,
                v.frames,
                v.layers
            );
        }
        let _ = writeln!(
            s,
            "\n{:<14} {:>9} {:>7}  promises kept",
            "partner", "webhooks", "stages"
        );
        for p in &self.partners {
            let _ = writeln!(
                s,
                "{:<14} {:>9} {:>7}  {}",
                p.id,
                p.received,
                p.reported,
                promises_cell(p.promises)
            );
        }
        let _ = writeln!(
            s,
            "\ncloud: {} records applied ({} duplicates dropped), {} downlinks, {} webhooks delivered, {} dead letters, {} bad signatures, {} services recorded, {} layer changes",
            self.records_applied,
            self.duplicates,
            self.downlinks,
            self.webhooks_delivered,
            self.dead_letters,
            self.bad_signatures,
            self.services,
            self.layer_changes
        );
        let _ = writeln!(
            s,
            "{} simulated days in {:.1} s of real time",
            self.days, self.real_s
        );
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_promises_column_reads_kept_of_settled_with_the_share() {
        assert_eq!(promises_cell(Some((7, 1))), "7/8 (88 %)");
        assert_eq!(promises_cell(Some((3, 0))), "3/3 (100 %)");
        assert_eq!(promises_cell(Some((0, 2))), "0/2 (0 %)");
        assert_eq!(promises_cell(Some((2, 1))), "2/3 (67 %)");
        assert_eq!(promises_cell(Some((1, 2))), "1/3 (33 %)");
        assert_eq!(promises_cell(Some((0, 0))), "-");
        assert_eq!(promises_cell(None), "-");
    }

    #[test]
    fn the_promises_api_is_read_per_partner() {
        let api = serde_json::json!({"from": 1, "to": 2, "partners": [
            {"partner": "dealer-north", "kept": 3, "missed": 1, "share": 0.75, "stages": []},
            {"partner": "service-desk", "kept": 0, "missed": 0, "share": null, "stages": []},
            {"partner": "broken", "kept": "3"},
        ]});
        let rows = promises_by_partner(&api);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows["dealer-north"], (3, 1));
        assert_eq!(rows["service-desk"], (0, 0));
        assert!(promises_by_partner(&serde_json::Value::Null).is_empty());
    }
}
