//! proptest strategies for every wire type, shared by the integration tests.
#![allow(dead_code, missing_docs)]

use proptest::prelude::*;
use rapport_shared::*;

pub fn vin() -> impl Strategy<Value = Vin> {
    "[A-HJ-NPR-Z0-9]{17}".prop_map(|s| s.parse().expect("strategy makes valid VINs"))
}

pub fn ts() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        // Realistic wall-clock times, and the full range for the edges.
        (1_600_000_000_000u64..2_200_000_000_000).prop_map(Timestamp::from_millis),
        any::<u64>().prop_map(Timestamp::from_millis),
    ]
}

pub fn odometer() -> impl Strategy<Value = Odometer> {
    prop_oneof![
        (0u64..3_000_000_000).prop_map(Odometer::from_meters),
        any::<u64>().prop_map(Odometer::from_meters),
    ]
}

pub fn dtc() -> impl Strategy<Value = Dtc> {
    prop_oneof![
        any::<u16>().prop_map(|c| Dtc::Obd(ObdCode::new(c))),
        (0u32..=0xFF_FFFF, any::<u8>())
            .prop_map(|(c, s)| Dtc::Uds(UdsCode::new(c).expect("24-bit"), UdsStatus(s))),
        (0u32..=Spn::MAX, 0u8..=31, 0u8..=127).prop_map(|(s, f, o)| Dtc::J1939(
            Spn::new(s).expect("19-bit"),
            Fmi::new(f).expect("5-bit"),
            OccurrenceCount::new(o).expect("7-bit")
        )),
    ]
}

pub fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::Info),
        Just(Severity::Warning),
        Just(Severity::Critical)
    ]
}

pub fn source() -> impl Strategy<Value = SignalSource> {
    prop_oneof![
        Just(SignalSource::Obd),
        Just(SignalSource::Uds),
        Just(SignalSource::J1939),
        Just(SignalSource::Dbc)
    ]
}

pub fn dtc_event() -> impl Strategy<Value = DtcEvent> {
    (
        dtc(),
        severity(),
        any::<u32>(),
        proptest::option::of(any::<u16>().prop_map(DtcClass::from_code)),
    )
        .prop_map(|(dtc, severity, ecu, class)| DtcEvent {
            dtc,
            severity,
            ecu,
            class,
        })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_:0-9]{0,24}", any::<String>()]
}

fn opt<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::of(s)
}

pub fn prompt_kind() -> impl Strategy<Value = PromptKind> {
    prop_oneof![
        prop::sample::select(PromptKind::ALL.to_vec()),
        // Unknown codes from a newer peer must survive a round trip unchanged.
        (PromptKind::ALL.len() as u16..).prop_map(PromptKind::from_code),
    ]
}

pub fn consent_kind() -> impl Strategy<Value = ConsentKind> {
    prop_oneof![
        prop::sample::select(ConsentKind::ALL.to_vec()),
        (ConsentKind::ALL.len() as u16..).prop_map(ConsentKind::from_code),
    ]
}

pub fn prompt_action() -> impl Strategy<Value = PromptAction> {
    prop_oneof![
        Just(PromptAction::Shown),
        Just(PromptAction::Acknowledged),
        ts().prop_map(|until| PromptAction::Snoozed { until }),
        Just(PromptAction::Dismissed),
        Just(PromptAction::Booked),
    ]
}

pub fn maintenance_status() -> impl Strategy<Value = MaintenanceStatus> {
    prop_oneof![
        Just(MaintenanceStatus::DueSoon),
        Just(MaintenanceStatus::Due),
        Just(MaintenanceStatus::Overdue),
        Just(MaintenanceStatus::Done),
    ]
}

pub fn record_body() -> impl Strategy<Value = RecordBody> {
    prop_oneof![
        (odometer(), source()).prop_map(|(odometer, source)| RecordBody::Odometer(
            OdometerReading { odometer, source }
        )),
        (any::<u64>(), source()).prop_map(|(s, source)| RecordBody::EngineHours(
            EngineHoursReading {
                hours: EngineHours::from_secs(s),
                source
            }
        )),
        dtc_event().prop_map(RecordBody::DtcAppeared),
        dtc_event().prop_map(RecordBody::DtcCleared),
        (prop::collection::vec(dtc_event(), 0..8), any::<bool>())
            .prop_map(|(active, mil)| RecordBody::DtcSnapshot(DtcSnapshot { active, mil })),
        (
            text(),
            maintenance_status(),
            odometer(),
            opt(odometer()),
            opt(ts()),
            opt(any::<u64>())
        )
            .prop_map(|(item, status, odometer, due_odometer, due_at, h)| {
                RecordBody::Maintenance(MaintenanceEvent {
                    item,
                    status,
                    odometer,
                    due_odometer,
                    due_at,
                    due_engine_hours: h.map(EngineHours::from_secs),
                })
            }),
        (
            text(),
            prompt_kind(),
            text(),
            any::<bool>(),
            prompt_action()
        )
            .prop_map(
                |(prompt, kind, subject, critical, action)| RecordBody::Prompt(PromptEvent {
                    prompt,
                    kind,
                    subject,
                    critical,
                    action
                })
            ),
        (consent_kind(), any::<bool>())
            .prop_map(|(consent, granted)| RecordBody::Consent(ConsentChange { consent, granted })),
        (text(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(v, u, d, r)| {
            RecordBody::Heartbeat(Heartbeat {
                agent_version: v,
                uptime_s: u,
                outbox_depth: d,
                records_dropped: r,
            })
        }),
        (10u32.., prop::collection::vec(any::<u8>(), 0..32))
            .prop_map(|(tag, bytes)| RecordBody::Unknown { tag, bytes }),
    ]
}

/// Records with strictly increasing sequence numbers (gaps allowed, as after drops).
pub fn records(max: usize) -> impl Strategy<Value = Vec<Record>> {
    prop::collection::vec((1u64..1_000, ts(), record_body()), 0..max).prop_map(|items| {
        let mut seq = 0u64;
        items
            .into_iter()
            .map(|(gap, at, body)| {
                seq += gap;
                Record { seq, at, body }
            })
            .collect()
    })
}

pub fn uplink() -> impl Strategy<Value = Uplink> {
    (vin(), records(40)).prop_map(|(vin, records)| Uplink { vin, records })
}

pub fn maintenance_item() -> impl Strategy<Value = MaintenanceItem> {
    (
        text(),
        opt(any::<u32>()),
        opt(any::<u32>()),
        opt(any::<u32>()),
        opt(any::<u32>()),
        opt(any::<u32>()),
        opt(any::<u32>()),
        opt(any::<u32>()),
    )
        .prop_map(|(id, a, b, c, d, e, f, g)| MaintenanceItem {
            id,
            every_km: a,
            every_months: b,
            every_engine_hours: c,
            first_at_km: d,
            first_at_months: e,
            due_soon_km: f,
            due_soon_days: g,
        })
}

pub fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::Low),
        Just(Priority::Normal),
        Just(Priority::High)
    ]
}

pub fn downlink_body() -> impl Strategy<Value = DownlinkBody> {
    prop_oneof![
        (
            text(),
            text(),
            text(),
            priority(),
            ts(),
            ts(),
            (
                opt(odometer()),
                opt(odometer()),
                opt(any::<u32>()),
                opt(any::<u32>()),
                any::<bool>()
            )
        )
            .prop_map(
                |(campaign_id, title, text, priority, valid_from, valid_until, t)| {
                    DownlinkBody::Campaign(Campaign {
                        campaign_id,
                        title,
                        text,
                        priority,
                        valid_from,
                        valid_until,
                        target: CampaignTarget {
                            min_odometer: t.0,
                            max_odometer: t.1,
                            min_days_owned: t.2,
                            max_days_owned: t.3,
                            no_active_faults: t.4,
                        },
                    })
                }
            ),
        (text(), prop::collection::vec(maintenance_item(), 0..6))
            .prop_map(|(line, items)| DownlinkBody::ScheduleUpdate(ScheduleUpdate { line, items })),
        (
            prop::collection::vec(text(), 0..4),
            ts(),
            opt(odometer()),
            text()
        )
            .prop_map(|(items, performed_at, odometer, partner)| {
                DownlinkBody::ServiceRecorded(ServiceRecorded {
                    items,
                    performed_at,
                    odometer,
                    partner,
                })
            }),
        (text(), opt(text()), text(), ts(), text()).prop_map(
            |(prompt, item, partner, appointment, location)| {
                DownlinkBody::BookingConfirmed(BookingConfirmed {
                    prompt,
                    item,
                    partner,
                    appointment,
                    location,
                })
            }
        ),
        (5u32.., prop::collection::vec(any::<u8>(), 0..32))
            .prop_map(|(tag, bytes)| DownlinkBody::Unknown { tag, bytes }),
    ]
}

pub fn downlink() -> impl Strategy<Value = Downlink> {
    (
        vin(),
        prop::collection::vec((any::<u64>(), ts(), downlink_body()), 0..12),
    )
        .prop_map(|(vin, msgs)| Downlink {
            vin,
            messages: msgs
                .into_iter()
                .map(|(id, at, body)| DownlinkMessage { id, at, body })
                .collect(),
        })
}
