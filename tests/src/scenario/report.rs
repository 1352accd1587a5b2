//! The end of the story in one table per party: each vehicle (what its car really did, what
//! its agent and the cloud know, what its driver saw and did, its layers), each partner (what
//! it received and answered) and the cloud (records, duplicates, alerts, downlinks).

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
    /// Acknowledgements accepted.
    pub acknowledged: u64,
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
    /// Reads the testbed's state.
    pub fn build(bed: &Testbed) -> Self {
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
                acknowledged: bed.partners.acknowledged.get(id).copied().unwrap_or(0),
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
            "\n{:<14} {:>9} {:>13}",
            "partner", "webhooks", "acknowledged"
        );
        for p in &self.partners {
            let _ = writeln!(s, "{:<14} {:>9} {:>13}", p.id, p.received, p.acknowledged);
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
