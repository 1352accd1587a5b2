//! Who is in the story: the vehicles, their drivers and their partners, and each car's weeks
//! of driving as a script — all decided from the seed before anything runs, so the same seed
//! always tells the same story.
//!
//! Four kinds of vehicle, cycled when more are asked for:
//! - a **new car** on OBD-II only: break-in advice, the end of break-in, a misfire (P0300,
//!   critical) appearing on a morning drive and clearing;
//! - a **five-month-old car** reading OBD-II, a UDS cluster and DBC broadcast signals: its first
//!   service comes due soon, then due — the driver books, the dealer is told;
//! - a **one-year-old car** on DBC broadcast signals only: an anniversary and the 10,000 km
//!   milestone, a driver who rarely engages;
//! - a **truck** on J1939: a coolant over-temperature fault (critical), its oil service by the
//!   distance it has run.
//!
//! Pure: the seed in, configs and scripts out.

use std::time::Duration;

use rapport_agent::sim::{Fault, Lamp, ObdList, Power, Script, Step};
use rapport_shared::{EngineHours, Fmi, ObdCode, Odometer, Spn, Timestamp, Vin};

use super::rng::Rng;

/// The story starts on Monday 2026-03-02 at 05:00 UTC (06:00 on the head units' clocks).
pub const T0_MS: u64 = 1_772_427_600_000;
/// A day in milliseconds.
pub const DAY_MS: u64 = 86_400_000;
/// The head units' offset from UTC (config/passenger.toml's `utc_offset_minutes`).
const LOCAL_OFFSET_MIN: u64 = 60;

/// The kinds of vehicle in the story.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Delivered days ago; OBD-II only.
    NewCar,
    /// Five months old; OBD-II, UDS and DBC.
    FirstService,
    /// A year old; DBC broadcast only.
    Anniversary,
    /// A long-haul truck; J1939.
    Truck,
}

impl Kind {
    /// In the order vehicles are cast.
    pub const ALL: [Self; 4] = [
        Self::NewCar,
        Self::FirstService,
        Self::Anniversary,
        Self::Truck,
    ];

    /// What the agent reads on this vehicle's bus.
    pub fn protocols(self) -> &'static str {
        match self {
            Self::NewCar => "OBD-II",
            Self::FirstService => "OBD-II + UDS + DBC",
            Self::Anniversary => "DBC",
            Self::Truck => "J1939",
        }
    }

    /// `passenger` or `commercial`.
    pub fn category(self) -> &'static str {
        if self == Self::Truck {
            "commercial"
        } else {
            "passenger"
        }
    }
}

/// How a driver answers prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persona {
    /// Acts on most prompts, books services.
    Engaged,
    /// Acknowledges some, snoozes or dismisses others.
    Casual,
    /// Mostly dismisses or leaves prompts alone.
    Distant,
    /// A fleet driver: acknowledges faults, books services, dismisses the rest.
    Fleet,
}

/// One vehicle of the story.
#[derive(Debug, Clone)]
pub struct Cast {
    /// Position in the cast (0-based).
    pub index: usize,
    /// The kind.
    pub kind: Kind,
    /// Its VIN.
    pub vin: Vin,
    /// The driver's name, for the log.
    pub driver: String,
    /// How the driver answers prompts.
    pub persona: Persona,
    /// Delivered to its owner (unix ms, 00:00 UTC).
    pub delivered_ms: u64,
    /// The odometer at the start.
    pub start_km: u64,
    /// Its dealer (a partner id).
    pub dealer: &'static str,
    /// Whether the owner agreed to share data with partners (registry consent).
    pub partner_sharing: bool,
    /// The agent config (TOML) with `{DATA}`, `{DBC}` and `{BROKER}` still to fill in.
    pub config: String,
    /// The whole drive, from the start of the story.
    pub script: Script,
    /// Faults the script sets, with when (for the log: the truth on the bus).
    pub faults: Vec<(Duration, String, bool)>,
    /// The driver's own random numbers.
    pub rng_stream: u64,
}

const NAMES: [&str; 12] = [
    "Ana", "Ben", "Chen", "Dana", "Emil", "Fatou", "Goran", "Hana", "Ivo", "Jun", "Kemal", "Lea",
];

/// The partners of the story: (id, name, kind, region).
pub const DEALERS: [(&str, &str); 3] = [
    ("dealer-north", "North Motors"),
    ("dealer-south", "South Cars"),
    ("truck-centre", "Truck Centre"),
];

/// The escalation desk (the alerts' fallback: the first escalation level).
pub const DESK: (&str, &str) = ("service-desk", "OEM service desk");

/// The OEM's regional service: the second escalation level (`[promises] second_level`).
pub const SECOND_LEVEL: (&str, &str) = ("oem-regional", "OEM regional service");

/// The registry's region codes the cloud counts as urban (`[promises] urban_regions`).
pub const URBAN_REGIONS: [&str; 2] = ["SH", "BJ"];

/// The registry region of a kind's cars: the new car in Shanghai and the five-month-old one in
/// Beijing (urban: on site within 3 h), the one-year-old car in Jiangsu (elsewhere) and the
/// truck on the road in Tibet (remote: rescued within 24 h).
pub const fn region(kind: Kind) -> &'static str {
    match kind {
        Kind::NewCar => "SH",
        Kind::FirstService => "BJ",
        Kind::Anniversary => "JS",
        Kind::Truck => "XZ",
    }
}

/// Whether the cloud counts a region as urban.
pub fn urban(region: &str) -> bool {
    URBAN_REGIONS.contains(&region)
}

/// Casts `n` vehicles for `days` of story from `seed`.
///
/// # Errors
/// A made-up VIN that does not parse (a bug here, reported rather than panicking).
pub fn cast(n: usize, days: u32, seed: u64) -> Result<Vec<Cast>, crate::Error> {
    (0..n)
        .map(|i| {
            let kind = Kind::ALL[i % Kind::ALL.len()];
            let round = i / Kind::ALL.len();
            let mut rng = Rng::new(seed, 1_000 + i as u64);
            one(i, kind, round, days, &mut rng)
        })
        .collect()
}

fn vin_for(kind: Kind, i: usize) -> Result<Vin, crate::Error> {
    let wmi = match kind {
        Kind::NewCar => "WRP0NEWC",
        Kind::FirstService => "WRP1SERV",
        Kind::Anniversary => "WRP2ANNV",
        Kind::Truck => "1RPTRUCK",
    };
    let text = format!("{wmi}{i:09}");
    text.parse()
        .map_err(|e| crate::Error::Scenario(format!("made-up VIN {text}: {e}")))
}

fn one(
    index: usize,
    kind: Kind,
    round: usize,
    days: u32,
    rng: &mut Rng,
) -> Result<Cast, crate::Error> {
    let driver = NAMES[index % NAMES.len()].to_owned()
        + &if round > 0 {
            format!(" {}", round + 1)
        } else {
            String::new()
        };
    let jitter = |rng: &mut Rng, km: u64| km + rng.range(0, 60);
    let (persona, delivered_days_ago, start_km, dealer, sharing) = match kind {
        Kind::NewCar => (Persona::Casual, 3, jitter(rng, 420), "dealer-north", true),
        Kind::FirstService => (
            Persona::Engaged,
            160,
            jitter(rng, 4_320),
            "dealer-north",
            true,
        ),
        Kind::Anniversary => (
            Persona::Distant,
            356,
            jitter(rng, 9_560),
            "dealer-south",
            // Every second one-year-old car's owner shares nothing with partners.
            round.is_multiple_of(2),
        ),
        Kind::Truck => (
            Persona::Fleet,
            900,
            jitter(rng, 412_000),
            "truck-centre",
            true,
        ),
    };
    let delivered_ms = (T0_MS / DAY_MS).saturating_sub(delivered_days_ago) * DAY_MS;
    let (script, faults) = drive(kind, start_km, days, rng);
    Ok(Cast {
        index,
        kind,
        vin: vin_for(kind, index)?,
        driver,
        persona,
        delivered_ms,
        start_km,
        dealer,
        partner_sharing: sharing,
        config: String::new(),
        script,
        faults,
        rng_stream: 2_000 + index as u64,
    })
}

/// Minutes of simulated time.
fn min(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}

/// A trip: city, a traffic light, open road, city again. Returns its duration.
fn trip(mut s: Script, rng: &mut Rng, road_kmh: u16, road_min: u64) -> (Script, Duration) {
    let city1 = rng.range(3, 6);
    let light = rng.range(15, 45);
    let city2 = rng.range(2, 5);
    s = s
        .power(Power::Running)
        .drive_for(45, min(city1))
        .then(Step::Stop(Duration::from_secs(light)))
        .drive_for(road_kmh, min(road_min))
        .drive_for(40, min(city2))
        .then(Step::Stop(Duration::from_secs(10)))
        .park(Duration::from_secs(30))
        .power(Power::Off);
    (
        s,
        min(city1 + road_min + city2) + Duration::from_secs(light + 40),
    )
}

/// The whole drive: each day a morning and an evening trip on working days, sometimes a
/// weekend outing; a fault on a chosen day. Times are local to the head unit.
fn drive(
    kind: Kind,
    start_km: u64,
    days: u32,
    rng: &mut Rng,
) -> (Script, Vec<(Duration, String, bool)>) {
    let mut s = Script::new(
        Odometer::from_km(start_km),
        EngineHours::from_secs(if kind == Kind::Truck {
            21_000 * 3600
        } else {
            0
        }),
    );
    let mut faults = Vec::new();
    let mut at = Duration::ZERO;
    // The fault day: early enough to be in a short story.
    let mut fault_day = u64::from(days.clamp(2, 12)) / 2 + rng.range(0, 1);
    if fault_day % 7 >= 5 {
        // The fault shows on a working day's drive (trucks rest at weekends).
        fault_day += 7 - fault_day % 7;
    }
    let fault = match kind {
        Kind::NewCar => Some((
            Fault::Obd {
                ecu: 0,
                code: ObdCode::new(0x0300),
                mil: true,
                list: ObdList::Stored,
            },
            "P0300 random misfire",
        )),
        Kind::Truck => Spn::new(110).ok().zip(Fmi::new(0).ok()).map(|(spn, fmi)| {
            (
                Fault::J1939 {
                    source: 0,
                    spn,
                    fmi,
                    lamp: Lamp::RedStop,
                },
                "SPN 110 / FMI 0 coolant temperature above normal",
            )
        }),
        _ => None,
    };
    let local = |h: u64, m: u64| min(h * 60 + m).saturating_sub(min(LOCAL_OFFSET_MIN));
    // T0 is 06:00 local: the day's clock starts at local midnight six hours before.
    let day_origin =
        |d: u64| (min(d * 24 * 60) + min(LOCAL_OFFSET_MIN)).saturating_sub(min(6 * 60 + 60));
    for d in 0..u64::from(days) {
        let weekend = d % 7 >= 5;
        let origin = day_origin(d);
        let mut legs: Vec<(Duration, u16, u64)> = Vec::new();
        match kind {
            Kind::Truck if !weekend => {
                legs.push((local(7, rng.range(0, 30)), 80, rng.range(80, 110)));
                legs.push((local(14, rng.range(0, 30)), 80, rng.range(80, 110)));
            }
            Kind::Truck => {}
            _ if weekend => {
                if rng.chance(60) {
                    legs.push((local(10, rng.range(0, 90)), 100, rng.range(25, 45)));
                    legs.push((local(17, rng.range(0, 60)), 100, rng.range(25, 45)));
                }
            }
            _ => {
                let road = match kind {
                    Kind::NewCar => rng.range(18, 24),
                    Kind::FirstService => rng.range(12, 18),
                    _ => rng.range(12, 16),
                };
                legs.push((local(7, rng.range(10, 50)), 90, road));
                legs.push((local(16, rng.range(30, 90)), 90, road + rng.range(0, 4)));
            }
        }
        for (leg, (start, kmh, road_min)) in legs.into_iter().enumerate() {
            let start = origin + start;
            if start > at {
                s = s.park(start - at);
                at = start;
            }
            let with_fault = fault.filter(|_| d == fault_day);
            if let (Some((f, name)), 0) = (with_fault, leg) {
                // The fault appears a few minutes into the morning drive and is gone (repaired
                // or transient) by the evening drive.
                s = s
                    .power(Power::Running)
                    .drive_for(50, min(4))
                    .then(Step::SetFault(f));
                faults.push((at + min(4), name.to_owned(), true));
                at += min(4);
            }
            let (next, took) = trip(s, rng, kmh, road_min);
            s = next;
            at += took;
            if let (Some((f, name)), 1) = (with_fault, leg) {
                s = s.then(Step::ClearFault(f));
                faults.push((at, format!("{name} cleared"), false));
            }
        }
    }
    let end = min(u64::from(days) * 24 * 60);
    if end > at {
        s = s.park(end - at);
    }
    (s, faults)
}

/// Local time of day for simulated time `at`, for the log (`Mon 07:42`).
pub fn local_label(at: Timestamp) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let local_min = at.as_millis() / 60_000 + LOCAL_OFFSET_MIN;
    let day = local_min / (24 * 60);
    let weekday = DAYS.get((day % 7) as usize).copied().unwrap_or("?");
    let date_day =
        (local_min.saturating_sub(T0_MS / 60_000 + LOCAL_OFFSET_MIN - 6 * 60)) / (24 * 60) + 1;
    format!(
        "day {date_day:>2} {weekday} {:02}:{:02}",
        (local_min / 60) % 24,
        local_min % 60
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_same_seed_casts_the_same_story() {
        let a = cast(6, 28, 42).unwrap();
        let b = cast(6, 28, 42).unwrap();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.vin, y.vin);
            assert_eq!(x.start_km, y.start_km);
            assert_eq!(format!("{:?}", x.script), format!("{:?}", y.script));
        }
        let c = cast(6, 28, 43).unwrap();
        assert!(
            a.iter()
                .zip(&c)
                .any(|(x, y)| format!("{:?}", x.script) != format!("{:?}", y.script))
        );
    }

    #[test]
    fn every_script_is_valid_and_vins_are_distinct() {
        let all = cast(9, 28, 7).unwrap();
        for c in &all {
            assert_eq!(c.script.validate(), Ok(()), "{}", c.driver);
        }
        let mut vins: Vec<_> = all.iter().map(|c| c.vin).collect();
        vins.sort();
        vins.dedup();
        assert_eq!(vins.len(), 9);
        assert_eq!(all[4].kind, Kind::NewCar);
    }

    #[test]
    fn faults_appear_and_clear_on_the_fault_day() {
        let all = cast(4, 10, 1).unwrap();
        let new_car = &all[0];
        assert_eq!(new_car.faults.len(), 2);
        assert!(new_car.faults[0].2 && !new_car.faults[1].2);
        assert!(new_car.faults[0].0 < new_car.faults[1].0);
        assert!(all[1].faults.is_empty());
        assert_eq!(all[3].faults.len(), 2);
    }

    #[test]
    fn local_labels_read_like_a_calendar() {
        assert_eq!(
            local_label(Timestamp::from_millis(T0_MS)),
            "day  1 Mon 06:00"
        );
        assert_eq!(
            local_label(Timestamp::from_millis(T0_MS + DAY_MS + 3_600_000)),
            "day  2 Tue 07:00"
        );
    }
}
