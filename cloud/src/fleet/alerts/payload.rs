//! What a partner receives for an alert: the JSON payload ([`payload`], exactly
//! [`super::PAYLOAD_KEYS`]) and how it is kept in storage (as a JSON value in JSON, as JSON
//! text in compact formats).
//!
//! Owns the payload's shape and spellings. Does not own what goes into it
//! ([`super::AlertContext`], the data minimisation rule) or when it is sent ([`super::Alert`]).

use rapport_shared::Timestamp;
use serde_json::{Map, Value};

use super::{AlertContext, WebhookEvent};
use crate::fleet::model::DriverResponse;

pub(super) const fn response_str(response: DriverResponse) -> &'static str {
    match response {
        DriverResponse::None => "none",
        DriverResponse::Acknowledged => "acknowledged",
        DriverResponse::Snoozed => "snoozed",
        DriverResponse::Dismissed => "dismissed",
        DriverResponse::Booked => "booked",
    }
}

/// The payload partners receive for an alert: exactly [`PAYLOAD_KEYS`]. Times are unix
/// milliseconds, as everywhere in the API; absent due values are `null`. Checklist items
/// carry `item`, `status`, `due_odometer_km`, `due_date`; faults `code`, `severity`, `since`;
/// stored codes `code`, `class` (`stored` or `previously_active`), `since`;
/// `layer` the five axes (`category`, `car`, `service`, `activity`, `lifecycle`).
pub fn payload(
    alert_id: u64,
    event: WebhookEvent,
    subject: &str,
    created_at: Timestamp,
    ctx: &AlertContext,
) -> Value {
    let checklist = ctx
        .checklist
        .iter()
        .map(|c| {
            let mut item = Map::new();
            item.insert("item".into(), Value::from(c.item.as_str()));
            item.insert("status".into(), Value::from(c.status.as_str()));
            item.insert("due_odometer_km".into(), Value::from(c.due_odometer_km));
            item.insert(
                "due_date".into(),
                Value::from(c.due_date.map(Timestamp::as_millis)),
            );
            Value::Object(item)
        })
        .collect::<Vec<_>>();
    let faults = ctx
        .active_faults
        .iter()
        .map(|f| {
            let mut fault = Map::new();
            fault.insert("code".into(), Value::from(f.code.as_str()));
            fault.insert("severity".into(), Value::from(f.severity.as_str()));
            fault.insert("since".into(), Value::from(f.since.as_millis()));
            Value::Object(fault)
        })
        .collect::<Vec<_>>();
    let stored = ctx
        .stored_codes
        .iter()
        .map(|c| {
            let mut code = Map::new();
            code.insert("code".into(), Value::from(c.code.as_str()));
            code.insert("class".into(), Value::from(c.class.name()));
            code.insert("since".into(), Value::from(c.since.as_millis()));
            Value::Object(code)
        })
        .collect::<Vec<_>>();
    let l = &ctx.layers;
    let mut layer = Map::new();
    layer.insert("category".into(), Value::from(l.category.as_str()));
    layer.insert("car".into(), Value::from(l.car.as_str()));
    layer.insert("service".into(), Value::from(l.service.as_str()));
    layer.insert("activity".into(), Value::from(l.activity.as_str()));
    layer.insert("lifecycle".into(), Value::from(l.lifecycle.as_str()));

    let mut p = Map::new();
    p.insert("type".into(), Value::from(event.as_str()));
    p.insert("alert_id".into(), Value::from(alert_id));
    p.insert("created_at".into(), Value::from(created_at.as_millis()));
    p.insert("subject".into(), Value::from(subject));
    p.insert("vin".into(), Value::from(ctx.vin.as_str()));
    p.insert("line".into(), Value::from(ctx.line.as_str()));
    p.insert("category".into(), Value::from(ctx.category.as_str()));
    p.insert("odometer_km".into(), Value::from(ctx.odometer_km));
    p.insert("checklist".into(), Value::Array(checklist));
    p.insert("active_faults".into(), Value::Array(faults));
    p.insert("stored_codes".into(), Value::Array(stored));
    p.insert(
        "driver_response".into(),
        Value::from(response_str(ctx.driver_response)),
    );
    p.insert("layer".into(), Value::Object(layer));
    p.insert("suggestion".into(), Value::from(ctx.suggestion.as_str()));
    Value::Object(p)
}

/// `payload` as a JSON value in human-readable formats, as JSON text in compact ones.
pub(super) mod payload_serde {
    use serde::de::Error as _;
    use serde::{Deserialize as _, Deserializer, Serialize as _, Serializer};
    use serde_json::Value;

    pub(in crate::fleet::alerts) fn serialize<S: Serializer>(
        value: &Value,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            value.serialize(s)
        } else {
            s.serialize_str(&value.to_string())
        }
    }

    pub(in crate::fleet::alerts) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Value, D::Error> {
        if d.is_human_readable() {
            Value::deserialize(d)
        } else {
            let text = String::deserialize(d)?;
            serde_json::from_str(&text).map_err(D::Error::custom)
        }
    }
}
