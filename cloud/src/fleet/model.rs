//! The fleet's domain types, shared by the registry, layering, strategies and alerts: who a
//! vehicle is ([`Registration`]), what the cloud learned about its driver ([`Profile`]), and
//! where the driver sits ([`Layers`]).
//!
//! Owns the names of every layer value (their `as_str` is the API's and the config's
//! spelling). Does not own how a value is decided ([`super::layers`]) or stored.

use rapport_shared::{Timestamp, Vin};
use serde::{Deserialize, Serialize};

/// Milliseconds in a day.
pub const DAY_MS: u64 = 86_400_000;

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* #[doc = $s] $v),+ }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [Self] = &[$(Self::$v),+];

            /// The spelling in config files and the API.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),+ }
            }

            /// Position in [`Self::ALL`].
            pub const fn index(self) -> usize {
                self as usize
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl core::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(Self::$v),)+
                    other => Err(format!(
                        "{other:?} is not one of {}",
                        [$($s),+].join(", ")
                    )),
                }
            }
        }
    };
}

named_enum! {
    /// Passenger car (a consumer) or commercial vehicle (a small business).
    Category { Passenger => "passenger", Commercial => "commercial" }
}

named_enum! {
    /// Maturity with the car: ownership time and distance.
    CarMaturity { Novice => "novice", Skilled => "skilled", Veteran => "veteran" }
}

named_enum! {
    /// Maturity with the service: prompt actions, bookings, services.
    ServiceMaturity { Junior => "junior", Growing => "growing", Mature => "mature" }
}

named_enum! {
    /// Activity: time since the driver last engaged.
    Activity { Active => "active", Declining => "declining", Churned => "churned", Dormant => "dormant" }
}

named_enum! {
    /// Lifecycle of the ownership.
    Lifecycle { New => "new", Retained => "retained", Lapsed => "lapsed" }
}

/// Where a driver sits on every axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Layers {
    /// Passenger or commercial.
    pub category: Category,
    /// With the car.
    pub car: CarMaturity,
    /// With the service.
    pub service: ServiceMaturity,
    /// Activity.
    pub activity: Activity,
    /// Lifecycle.
    pub lifecycle: Lifecycle,
}

impl Layers {
    /// Every cell of the matrix: each combination of the five axes once.
    pub fn every_cell() -> Vec<Self> {
        let mut out = Vec::new();
        for &category in Category::ALL {
            for &car in CarMaturity::ALL {
                for &service in ServiceMaturity::ALL {
                    for &activity in Activity::ALL {
                        for &lifecycle in Lifecycle::ALL {
                            out.push(Self {
                                category,
                                car,
                                service,
                                activity,
                                lifecycle,
                            });
                        }
                    }
                }
            }
        }
        out
    }
}

/// Consents the driver gave (from the registry at sale, then the car's consent records).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Consents {
    /// The car's data may go to partners (dealer, service providers).
    pub partner_sharing: bool,
    /// Engagement prompts and campaigns may be shown.
    pub engagement: bool,
}

/// A vehicle in the registry: who it is, who sold it, where it lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The vehicle.
    pub vin: Vin,
    /// Passenger or commercial.
    pub category: Category,
    /// Vehicle line (model), e.g. `"e-compact 2025"`.
    pub line: String,
    /// Handed to the driver (ownership starts); unknown: the cloud's first sighting counts.
    pub delivered: Option<Timestamp>,
    /// The dealer's partner id.
    pub dealer: Option<String>,
    /// Region code (service providers cover regions).
    pub region: Option<String>,
    /// Consents given at sale.
    pub consents: Consents,
    /// When the current owner's relationship started, if the car changed hands after its
    /// delivery (an owner change's effective date, midnight UTC; see `docs/data-rights.md`,
    /// "Owner change"). `None`: the first owner's, from `delivered`. A later date than the
    /// stored one is an owner change; the same date again changes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_since: Option<Timestamp>,
    /// The importer's opaque reference to the current owner (a CRM id; never a name),
    /// optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The category of a vehicle with no registry entry: passenger (the registry says otherwise).
pub const DEFAULT_CATEGORY: Category = Category::Passenger;

impl Registration {
    /// What the cloud assumes of a vehicle it has no registry entry for: the default
    /// category, no line, no delivery date, no dealer, no region, no consent.
    pub fn unregistered(vin: Vin) -> Self {
        Self {
            vin,
            category: DEFAULT_CATEGORY,
            line: String::new(),
            delivered: None,
            dealer: None,
            region: None,
            consents: Consents::default(),
            owner_since: None,
            owner: None,
        }
    }
}

/// What the cloud learned of a driver from the car's records: the inputs of layering.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Ownership start: the registry's delivery date, else the first record's time.
    pub owned_since: Option<Timestamp>,
    /// Latest odometer, metres.
    pub odometer_m: u64,
    /// The driver's last engagement: a prompt acknowledged or booked, or a service done.
    /// `None`: never (ownership start counts).
    pub last_engagement: Option<Timestamp>,
    /// Prompts the driver acted on (acknowledged, snoozed, dismissed, booked).
    pub prompt_actions: u32,
    /// Bookings asked for from a prompt.
    pub bookings: u32,
    /// Services recorded (maintenance done).
    pub services: u32,
    /// The latest record's time (the car's clock).
    pub last_seen: Option<Timestamp>,
}

/// One change of layer, for the timeline: what, when and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerChange {
    /// The vehicle.
    pub vin: Vin,
    /// Before (`None`: first placement).
    pub from: Option<Layers>,
    /// After.
    pub to: Layers,
    /// When.
    pub at: Timestamp,
    /// Why, for people: `"no engagement for 15 days (declining after 14)"`.
    pub why: String,
}

/// A set of cells of the layer matrix, as the API selects them: the values allowed on each
/// axis (an empty list: any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CellFilter {
    /// Categories.
    pub category: Vec<Category>,
    /// Maturities with the car.
    pub car: Vec<CarMaturity>,
    /// Maturities with the service.
    pub service: Vec<ServiceMaturity>,
    /// Activities.
    pub activity: Vec<Activity>,
    /// Lifecycles.
    pub lifecycle: Vec<Lifecycle>,
}

impl CellFilter {
    /// The axes' names, as the API and the strategy file spell them.
    pub const AXES: [&'static str; 5] = ["category", "car", "service", "activity", "lifecycle"];

    /// Sets one axis from its name and the values' spellings.
    ///
    /// # Errors
    /// The axis is none of [`Self::AXES`], a value is not one of the axis's, or there is
    /// none (an axis left out is any value; an empty list would select no cell).
    pub fn set(&mut self, axis: &str, values: &[String]) -> Result<(), String> {
        fn parse<T: core::str::FromStr<Err = String>>(values: &[String]) -> Result<Vec<T>, String> {
            if values.is_empty() {
                return Err("an empty list selects no cell; leave the axis out for any".into());
            }
            values.iter().map(|v| v.trim().parse()).collect()
        }
        match axis {
            "category" => self.category = parse(values)?,
            "car" => self.car = parse(values)?,
            "service" => self.service = parse(values)?,
            "activity" => self.activity = parse(values)?,
            "lifecycle" => self.lifecycle = parse(values)?,
            _ => {
                return Err(format!("not an axis ({})", Self::AXES.join(", ")));
            }
        }
        Ok(())
    }

    /// Whether `layers` is in one of the cells.
    pub fn matches(&self, layers: &Layers) -> bool {
        fn any<T: PartialEq>(set: &[T], v: &T) -> bool {
            set.is_empty() || set.contains(v)
        }
        any(&self.category, &layers.category)
            && any(&self.car, &layers.car)
            && any(&self.service, &layers.service)
            && any(&self.activity, &layers.activity)
            && any(&self.lifecycle, &layers.lifecycle)
    }
}

/// Which partner a task or alert goes to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "to")]
pub enum PartnerTarget {
    /// The vehicle's dealer (its channel partner, from the registry).
    Dealer,
    /// A service provider covering the vehicle's region with this capability.
    Provider {
        /// E.g. `"roadside"`, `"tyres"`, `"ev_battery"`.
        capability: String,
    },
    /// The fallback partner (escalations, vehicles without a dealer).
    Fallback,
}

/// The driver's latest response to a prompt, as partners see it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum DriverResponse {
    /// No action yet (or not shown yet).
    #[default]
    None,
    /// Acknowledged.
    Acknowledged,
    /// Snoozed.
    Snoozed,
    /// Dismissed.
    Dismissed,
    /// Asked to book a service.
    Booked,
}
