//! The JSON shapes the routes of more than one resource share, and how every answer is
//! written ([`json`]): what the ingest knows of a vehicle ([`VehicleView`]), one record of
//! the car ([`RecordView`]), what an operator sends to push a downlink
//! ([`DownlinkRequest`]). Each resource's own shapes live beside its routes.
//!
//! Owns these shapes and their conversions from the domain types. Does not own routes or
//! status codes.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rapport_shared::{
    Campaign, CampaignTarget, DownlinkBody, DtcClass, Odometer, Priority, Record, RecordBody,
    ServiceRecorded, Timestamp, Vin,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::ApiError;
use crate::vehicle::{DtcEntry, Reading, VehicleState};

/// A JSON answer with `status`. The view goes through a [`serde_json::Value`], whose objects
/// keep their keys sorted (serde_json without `preserve_order`): the answer's bytes are the
/// same whatever order a view declares its fields in, as they were when the bodies were
/// built as values.
///
/// # Errors
/// 500 if the view does not serialise.
pub fn json<T: Serialize>(status: StatusCode, view: &T) -> Result<Response, ApiError> {
    let value = serde_json::to_value(view).map_err(|e| ApiError::internal(&e))?;
    Ok((status, axum::Json(value)).into_response())
}

/// [`json`] with 200.
///
/// # Errors
/// As [`json`].
pub fn ok<T: Serialize>(view: &T) -> Result<Response, ApiError> {
    json(StatusCode::OK, view)
}

/// `GET /api/v1/vehicles/{vin}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VehicleView {
    /// The VIN.
    pub vin: String,
    /// The latest odometer (by seq), or null.
    pub odometer: Option<OdometerView>,
    /// The latest engine hours (by seq), or null.
    pub engine_hours: Option<EngineHoursView>,
    /// Faults present now, one per (code, ECU, class).
    pub active_dtcs: Vec<DtcView>,
    /// Codes the ECUs remember (class `stored` or `previously_active`); not faults now.
    pub stored_dtcs: Vec<DtcView>,
    /// The malfunction lamp from the latest snapshot, or null if none was seen.
    pub mil: Option<bool>,
    /// The highest seq applied.
    pub last_seq: u64,
    /// Every seq up to this one is applied.
    pub applied_through: u64,
    /// Seqs missing below `last_seq` (not arrived yet, or dropped on the car).
    pub missing_seqs: u64,
    /// Records applied.
    pub records: RecordCounts,
    /// When the cloud first applied a record of this vehicle, unix ms.
    pub first_seen_ms: u64,
    /// When it last did, unix ms.
    pub last_seen_ms: u64,
    /// The car's clock cannot be believed now (null: it can): since when, and the car's time
    /// against the cloud's then. Its records' times are capped at the cloud's.
    pub clock_untrusted: Option<ClockView>,
}

/// A car clock that cannot be believed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClockView {
    /// The seq of the record that showed it.
    pub since_seq: u64,
    /// That record's car time, unix ms.
    pub car_at_ms: u64,
    /// The cloud's time then, unix ms.
    pub cloud_at_ms: u64,
}

/// The odometer.
#[derive(Debug, Serialize, ToSchema)]
pub struct OdometerView {
    /// Kilometres.
    pub km: f64,
    /// Metres (exact).
    pub meters: u64,
    /// Where the car read it.
    pub source: &'static str,
    /// The record's seq.
    pub seq: u64,
    /// The record's time on the car, unix ms.
    pub at_ms: u64,
}

/// Engine hours.
#[derive(Debug, Serialize, ToSchema)]
pub struct EngineHoursView {
    /// Hours.
    pub hours: f64,
    /// Seconds (exact).
    pub seconds: u64,
    /// Where the car read it.
    pub source: &'static str,
    /// The record's seq.
    pub seq: u64,
    /// The record's time on the car, unix ms.
    pub at_ms: u64,
}

/// One listed fault.
#[derive(Debug, Serialize, ToSchema)]
pub struct DtcView {
    /// `P0133`, `P0133-1C`, `SPN110/FMI0`.
    pub code: String,
    /// The list it is in: `confirmed`, `pending`, `permanent`, `test_failed`, `active`,
    /// `stored`, `previously_active`; null from agents older than v1.1.
    pub class: Option<&'static str>,
    /// `info`, `warning`, `critical`.
    pub severity: &'static str,
    /// The reporting ECU.
    pub ecu: u32,
    /// The seq of the record that made it active.
    pub seq: u64,
    /// That record's time on the car, unix ms.
    pub at_ms: u64,
}

impl DtcView {
    fn new(d: &DtcEntry) -> Self {
        Self {
            code: d.dtc.code().to_string(),
            class: d.class.map(DtcClass::name),
            severity: d.severity.as_str(),
            ecu: d.ecu,
            seq: d.seq,
            at_ms: d.at.as_millis(),
        }
    }
}

/// Record counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordCounts {
    /// All kinds.
    pub total: u64,
    /// Per kind name (`unknown`: kinds this build does not know).
    pub by_kind: BTreeMap<&'static str, u64>,
}

impl VehicleView {
    /// The view of a stored vehicle.
    pub fn new(vin: &Vin, s: &VehicleState) -> Self {
        let odometer = s.odometer.map(|r: Reading| OdometerView {
            km: Odometer::from_meters(r.value).km(),
            meters: r.value,
            source: r.source.as_str(),
            seq: r.seq,
            at_ms: r.at.as_millis(),
        });
        let engine_hours = s.engine_hours.map(|r| EngineHoursView {
            hours: r.value as f64 / 3600.0,
            seconds: r.value,
            source: r.source.as_str(),
            seq: r.seq,
            at_ms: r.at.as_millis(),
        });
        Self {
            vin: vin.to_string(),
            odometer,
            engine_hours,
            active_dtcs: s.active_dtcs().map(DtcView::new).collect(),
            stored_dtcs: s.stored_dtcs().map(DtcView::new).collect(),
            mil: s.mil.map(|(on, _)| on),
            last_seq: s.last_seq(),
            applied_through: s.applied.through(),
            missing_seqs: s.applied.missing(),
            records: RecordCounts {
                total: s.records(),
                by_kind: s.counts_by_kind().into_iter().collect(),
            },
            first_seen_ms: s.first_seen.as_millis(),
            last_seen_ms: s.last_seen.as_millis(),
            clock_untrusted: s.clock.map(|c| ClockView {
                since_seq: c.seq,
                car_at_ms: c.car_at.as_millis(),
                cloud_at_ms: c.cloud_at.as_millis(),
            }),
        }
    }
}

/// `POST /api/v1/vehicles/{vin}/downlink` (operator API): what to send.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[derive(ToSchema)]
pub enum DownlinkRequest {
    /// A campaign for the driver.
    Campaign {
        /// The campaign's business id.
        campaign_id: String,
        /// Short title.
        title: String,
        /// The text shown.
        text: String,
        /// `low`, `normal` (default) or `high`.
        #[serde(default = "normal")]
        priority: Priority,
        /// Not shown before, unix ms.
        valid_from_ms: u64,
        /// Not shown after, unix ms.
        valid_until_ms: u64,
        /// Conditions checked on the car.
        #[serde(default)]
        target: TargetRequest,
    },
    /// A service a partner recorded.
    ServiceRecorded {
        /// Schedule items covered (`"oil"`, ...).
        items: Vec<String>,
        /// When it was done, unix ms.
        performed_at_ms: u64,
        /// The odometer at the service, km.
        #[serde(default)]
        odometer_km: Option<u64>,
        /// Who did it.
        partner: String,
    },
}

fn normal() -> Priority {
    Priority::Normal
}

/// Campaign target conditions; all optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetRequest {
    /// At least this odometer, km.
    #[serde(default)]
    pub min_km: Option<u64>,
    /// At most this odometer, km.
    #[serde(default)]
    pub max_km: Option<u64>,
    /// Owned at least this many days.
    #[serde(default)]
    pub min_days_owned: Option<u32>,
    /// Owned at most this many days.
    #[serde(default)]
    pub max_days_owned: Option<u32>,
    /// Only when no fault is active.
    #[serde(default)]
    pub no_active_faults: bool,
}

impl DownlinkRequest {
    /// The wire body, or what is wrong with the request.
    ///
    /// # Errors
    /// A message naming the field.
    pub fn into_body(self) -> Result<DownlinkBody, String> {
        match self {
            Self::Campaign {
                campaign_id,
                title,
                text,
                priority,
                valid_from_ms,
                valid_until_ms,
                target,
            } => {
                for (field, value) in [
                    ("campaign_id", &campaign_id),
                    ("title", &title),
                    ("text", &text),
                ] {
                    if value.trim().is_empty() {
                        return Err(format!("{field} must not be empty"));
                    }
                }
                if valid_until_ms < valid_from_ms {
                    return Err("valid_until_ms is before valid_from_ms".into());
                }
                if let (Some(lo), Some(hi)) = (target.min_km, target.max_km)
                    && hi < lo
                {
                    return Err("target.max_km is below target.min_km".into());
                }
                Ok(DownlinkBody::Campaign(Campaign {
                    campaign_id,
                    title,
                    text,
                    priority,
                    valid_from: Timestamp::from_millis(valid_from_ms),
                    valid_until: Timestamp::from_millis(valid_until_ms),
                    target: CampaignTarget {
                        min_odometer: target.min_km.map(Odometer::from_km),
                        max_odometer: target.max_km.map(Odometer::from_km),
                        min_days_owned: target.min_days_owned,
                        max_days_owned: target.max_days_owned,
                        no_active_faults: target.no_active_faults,
                    },
                }))
            }
            Self::ServiceRecorded {
                items,
                performed_at_ms,
                odometer_km,
                partner,
            } => {
                if items.is_empty() || items.iter().any(|i| i.trim().is_empty()) {
                    return Err("items must list at least one non-empty item".into());
                }
                if partner.trim().is_empty() {
                    return Err("partner must not be empty".into());
                }
                Ok(DownlinkBody::ServiceRecorded(ServiceRecorded {
                    items,
                    performed_at: Timestamp::from_millis(performed_at_ms),
                    odometer: odometer_km.map(Odometer::from_km),
                    partner,
                }))
            }
        }
    }
}

/// One record of the car: `{"kind": "odometer", "seq": 7, "data": {...}}` (`data`: the
/// record's fields, as the wire types serialise them).
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordView {
    /// The record kind's name (`unknown`: a kind this build does not know).
    pub kind: &'static str,
    /// Its seq.
    pub seq: u64,
    /// Its body's fields.
    pub data: Value,
}

impl RecordView {
    /// The view of a record.
    pub fn new(r: &Record) -> Self {
        let kind = match &r.body {
            RecordBody::Unknown { .. } => "unknown",
            body => rapport_shared::v1::uplink::kind_name(body.tag()),
        };
        let data = match serde_json::to_value(&r.body) {
            // Externally tagged enum: `{"Odometer": {...}}` → the inner value.
            Ok(Value::Object(m)) if m.len() == 1 => {
                m.into_iter().next().map_or(Value::Null, |(_, v)| v)
            }
            Ok(v) => v,
            Err(_) => Value::Null,
        };
        Self {
            kind,
            seq: r.seq,
            data,
        }
    }
}
