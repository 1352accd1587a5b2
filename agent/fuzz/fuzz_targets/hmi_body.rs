//! Fuzzes the HMI API's write-route bodies (`hmi::bodies`: the bytes of
//! `POST /v1/prompts/{id}/action`, `POST /v1/service`, `PUT /v1/settings` and
//! `POST /v1/service/{alert_id}/answer` checked as each
//! handler checks them, without a server). Byte 0 picks the route, the rest is the body. Any
//! bytes are a command or a refusal with a 4xx status and one of the documented codes, never a
//! panic; what is accepted holds what the checks promise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rapport_agent::hmi::{DriverAction, MAX_ODOMETER_KM, MAX_SNOOZE_MINUTES, bodies};

/// The codes the routes may answer for a body (the table in the module doc of `hmi`).
const CODES: &[&str] = &[
    "malformed_json",
    "invalid_body",
    "unknown_action",
    "minutes_required",
    "minutes_out_of_range",
    "minutes_not_allowed",
    "invalid_service",
    "invalid_settings",
    "unknown_answer",
];

fn refused(r: &bodies::Refusal) {
    assert!((400..500).contains(&r.0), "{r:?}");
    assert!(CODES.contains(&r.1), "{r:?}");
    assert!(!r.2.is_empty(), "{r:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    match route % 4 {
        0 => match bodies::action(body) {
            Ok(DriverAction::Snooze { minutes }) => {
                assert!((1..=MAX_SNOOZE_MINUTES).contains(&minutes));
            }
            Ok(_) => {}
            Err(r) => refused(&r),
        },
        1 => match bodies::service(body) {
            Ok(req) => {
                assert!(!req.items.is_empty());
                assert!(req.items.iter().all(|i| !i.trim().is_empty()));
                if let Some(odo) = req.odometer {
                    #[allow(clippy::cast_precision_loss)]
                    let km = odo.meters() as f64 / 1000.0;
                    assert!(km <= MAX_ODOMETER_KM + 0.001, "{km}");
                }
            }
            Err(r) => refused(&r),
        },
        3 => match bodies::service_answer(body) {
            Ok(a) => assert_ne!(a.name(), "other"),
            Err(r) => refused(&r),
        },
        _ => match bodies::settings(body) {
            Ok(view) => {
                if let Some(q) = &view.quiet_hours {
                    assert_ne!(q.start, q.end);
                }
            }
            Err(r) => refused(&r),
        },
    }
});
