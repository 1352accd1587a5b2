//! A faulting truck's CAN side for the load mode: the agent's simulated J1939 engine ECU puts a
//! DM1 with the fault on a virtual bus, and the agent's own observer (the passive decoder, DTC
//! sets and severities of `rapport_agent::observe`, set up from `config/commercial.toml`)
//! decodes it into the observation the rules turn into a `DtcAppeared` record.
//!
//! Owns that chain and the moment the frame appeared on the bus (the start of the latency the
//! load mode measures). Does not own MQTT, batching or sequence numbers ([`super::vehicle`]).
//!
//! The record made here is the one the agent's rules engine makes for a DTC that becomes active
//! (`rules::engine`, `on_dtc`): `RecordBody::DtcAppeared(DtcEvent { dtc, severity, ecu })`.
//! The rules engine itself (memory, prompts, store) is not run per simulated vehicle: it is
//! the agent's business and would make 10,000 vehicles heavy without changing the record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rapport_agent::can::source::TimedFrame;
use rapport_agent::can::virtual_bus::VirtualBus;
use rapport_agent::config::{Config, Loaded};
use rapport_agent::observe::{DtcState, Observation, Observer};
use rapport_agent::sim::{
    ActiveFault, Fault, J1939Ecu, J1939EcuConfig, Lamp, Power, SimEcu, VehicleState,
};
use rapport_kit::config::Check as _;
use rapport_shared::v1::uplink::{DtcEvent, RecordBody};
use rapport_shared::{Fmi, Severity, Spn};

use super::LoadError;

/// The agent config the trucks' observers are built from (the repository's truck example).
const TRUCK_CONFIG: &str = include_str!("../../../config/commercial.toml");

/// Faults the load mode injects, as (SPN, FMI): each lights the red stop lamp, so the agent
/// rates it critical. Engine oil pressure low, coolant temperature high, coolant level low,
/// fuel delivery pressure low, engine speed above normal.
pub const FAULTS: [(u32, u8); 5] = [(100, 1), (110, 0), (111, 1), (94, 1), (190, 0)];

/// The agent config for the trucks, parsed and checked once.
///
/// # Errors
/// [`LoadError::Truck`] if the built-in example config does not load (a bug in the repo).
pub fn truck_config() -> Result<Arc<Loaded>, LoadError> {
    let config = Config::from_toml("config/commercial.toml", TRUCK_CONFIG)
        .map_err(|e| LoadError::Truck(e.to_string()))?;
    let problems = config.problems("");
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(LoadError::Truck(list.join("; ")));
    }
    Ok(Arc::new(Loaded { config, dbc: None }))
}

/// What the truck's CAN side produced for one injected fault.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// When the DM1 frame went on the bus.
    pub on_bus: Instant,
    /// The records the agent makes of it (one `DtcAppeared` per active code).
    pub records: Vec<RecordBody>,
    /// The fault codes as the cloud names them (`SPN110/FMI0`).
    pub codes: Vec<String>,
}

/// Puts a DM1 with `(spn, fmi)` under the red stop lamp on a fresh virtual bus from the
/// simulated engine ECU (source address 0) and decodes it with the agent's observer.
///
/// # Errors
/// [`LoadError::Truck`] when the SPN or FMI is out of range, or the ECU sent nothing the
/// observer turned into an active critical fault (which would be a bug in the agent's sim or
/// decoder, and is reported rather than hidden).
pub fn inject(loaded: &Loaded, spn: u32, fmi: u8) -> Result<Decoded, LoadError> {
    let spn = Spn::new(spn).map_err(|e| LoadError::Truck(e.to_string()))?;
    let fmi = Fmi::new(fmi).map_err(|e| LoadError::Truck(e.to_string()))?;
    let state = VehicleState {
        power: Power::Running,
        faults: vec![ActiveFault {
            fault: Fault::J1939 {
                source: 0,
                spn,
                fmi,
                lamp: Lamp::RedStop,
            },
            occurrences: 1,
        }],
        ..VehicleState::default()
    };
    // Only DM1 is broadcast: the other PGNs would be decoded too, but they are not what is
    // measured.
    let mut ecu = J1939Ecu::new(J1939EcuConfig {
        source_address: 0,
        ccvs1_period: None,
        vd_period: None,
        vdhr_period: None,
        hours_period: None,
        dm1_period: Some(Duration::from_secs(1)),
        bam_gap: Duration::from_millis(50),
    });
    let mut bus = VirtualBus::new(16);
    let engine = bus.attach();
    let agent = bus.attach();
    let mut observer = Observer::new(&rapport_agent::settings::observer(loaded));

    let start = Instant::now();
    let mut frames = Vec::with_capacity(2);
    ecu.poll(Duration::ZERO, &state, &mut frames);
    let mut on_bus = None;
    for frame in frames {
        let now = start.elapsed();
        on_bus.get_or_insert_with(Instant::now);
        bus.send(engine, frame, now);
    }
    let on_bus = on_bus.ok_or_else(|| LoadError::Truck("the J1939 ECU sent no DM1".into()))?;

    let mut observations = Vec::new();
    while let Some(stamped) = bus.recv(agent) {
        let timed = TimedFrame {
            frame: stamped.frame,
            at: stamped.at,
            wall: None,
        };
        observer.on_frame(&timed, &mut observations);
    }
    let mut records = Vec::new();
    let mut codes = Vec::new();
    for o in observations {
        if let Observation::Dtc {
            dtc,
            state: DtcState::Active,
            severity: Severity::Critical,
            ecu,
            ..
        } = o
        {
            codes.push(dtc.code().to_string());
            records.push(RecordBody::DtcAppeared(DtcEvent {
                dtc,
                severity: Severity::Critical,
                ecu,
                class: None,
            }));
        }
    }
    if records.is_empty() {
        return Err(LoadError::Truck(format!(
            "the DM1 for SPN{}/FMI{} under the red stop lamp decoded to no active critical fault",
            spn.get(),
            fmi.get()
        )));
    }
    Ok(Decoded {
        on_bus,
        records,
        codes,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_injected_fault_decodes_to_one_critical_dtc_appeared() {
        let loaded = truck_config().unwrap();
        for (spn, fmi) in FAULTS {
            let d = inject(&loaded, spn, fmi).unwrap();
            assert_eq!(d.codes, vec![format!("SPN{spn}/FMI{fmi}")]);
            match d.records.as_slice() {
                [RecordBody::DtcAppeared(e)] => {
                    assert_eq!(e.severity, Severity::Critical);
                    assert_eq!(e.ecu, 0, "the engine's source address");
                    assert_eq!(e.dtc.code().to_string(), format!("SPN{spn}/FMI{fmi}"));
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn out_of_range_codes_are_errors_not_panics() {
        let loaded = truck_config().unwrap();
        assert!(matches!(
            inject(&loaded, 1 << 20, 0),
            Err(LoadError::Truck(_))
        ));
        assert!(matches!(inject(&loaded, 100, 32), Err(LoadError::Truck(_))));
    }
}
