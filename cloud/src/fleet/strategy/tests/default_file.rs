//! The shipped `config/strategies.toml` (every rule in its cells and nowhere else, over the
//! whole matrix) and property tests of the limits over random event sequences.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

const DEFAULT_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/strategies.toml");

fn default_strategies() -> Strategies {
    Strategies::load(Path::new(DEFAULT_FILE)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_default_file_loads_validates_and_uses_the_default_cadence() {
    let config = StrategyConfig::read(Path::new(DEFAULT_FILE)).unwrap();
    assert_eq!(config.problems(""), Vec::new());
    let s = default_strategies();
    assert_eq!(*s.cadence(), Cadence::default());
    assert_eq!(
        s.rule_names().collect::<Vec<_>>(),
        [
            "novice_slipping_onboarding",
            "novice_slipping_onboarding_again",
            "growing_incentive",
            "growing_incentive_again",
            "mature_active_referral",
            "mature_active_referral_again",
            "mature_lost_dealer_call",
            "service_due_dealer",
            "critical_fault_dealer",
        ]
    );
}

/// The cells of each layer rule, written from the README's "The fleet" independently of the file.
fn design_cell(rule: &str, x: &Layers) -> bool {
    use Activity::*;
    let novice_slipping = x.car == CarMaturity::Novice && matches!(x.activity, Declining | Churned);
    let growing = x.service == ServiceMaturity::Growing;
    let mature_active = x.service == ServiceMaturity::Mature && x.activity == Active;
    let mature_lost =
        x.service == ServiceMaturity::Mature && matches!(x.activity, Churned | Dormant);
    match rule {
        "novice_slipping_onboarding" | "novice_slipping_onboarding_again" => novice_slipping,
        "growing_incentive" | "growing_incentive_again" => growing,
        "mature_active_referral" | "mature_active_referral_again" => mature_active,
        "mature_lost_dealer_call" => mature_lost,
        other => panic!("not a layer rule: {other}"),
    }
}

const ENTERING: [&str; 4] = [
    "novice_slipping_onboarding",
    "growing_incentive",
    "mature_active_referral",
    "mature_lost_dealer_call",
];
const STAYING: [&str; 3] = [
    "novice_slipping_onboarding_again",
    "growing_incentive_again",
    "mature_active_referral_again",
];

/// Names of the matching rules; checks that the first acts and later engagement ones yield to
/// it (one engagement contact per event).
fn matched(decisions: &[Decision]) -> Vec<&str> {
    for (i, d) in decisions.iter().enumerate() {
        assert!(d.engagement, "{d:?}");
        if i == 0 {
            assert!(matches!(d.outcome, Outcome::Act(_)), "{d:?}");
        } else {
            assert!(
                matches!(
                    d.outcome,
                    Outcome::Suppressed {
                        reason: SuppressReason::Cadence { .. }
                    }
                ),
                "{d:?}"
            );
        }
    }
    decisions.iter().map(|d| d.rule.as_str()).collect()
}

#[test]
fn each_default_layer_rule_fires_on_entering_its_cells_only() {
    let s = default_strategies();
    let h = ContactHistory::new();
    let cells = Layers::every_cell();
    assert_eq!(cells.len(), 216);
    let mut fired = std::collections::BTreeMap::<&str, usize>::new();
    for from in std::iter::once(None).chain(cells.iter().copied().map(Some)) {
        for to in &cells {
            let d = s.decide(
                &Event::LayerChanged { from, to: *to },
                &ctx(*to, BOTH, &h),
                at(T0),
            );
            let expected: Vec<&str> = ENTERING
                .into_iter()
                .filter(|r| design_cell(r, to) && !from.is_some_and(|f| design_cell(r, &f)))
                .collect();
            assert_eq!(matched(&d), expected, "{from:?} → {to:?}");
            for r in expected {
                *fired.entry(r).or_default() += 1;
            }
        }
    }
    assert_eq!(
        fired.len(),
        ENTERING.len(),
        "every rule fires somewhere: {fired:?}"
    );
}

#[test]
fn each_default_in_cell_rule_is_offered_in_its_cells_only() {
    let s = default_strategies();
    let h = ContactHistory::new();
    for x in Layers::every_cell() {
        let d = s.decide(&Event::InCell, &ctx(x, BOTH, &h), at(T0));
        let expected: Vec<&str> = STAYING.into_iter().filter(|r| design_cell(r, &x)).collect();
        assert_eq!(matched(&d), expected, "{x:?}");
        assert_eq!(
            s.next_in_cell(&ctx(x, BOTH, &h), at(T0)),
            (!expected.is_empty()).then_some(at(T0)),
            "{x:?}"
        );
        // The acted one is the right campaign.
        if let Some((rule, Action::Campaign { campaign })) = acted(&d).first() {
            let template = match *rule {
                "novice_slipping_onboarding_again" => "onboarding",
                "growing_incentive_again" => "growing_incentive",
                _ => "referral",
            };
            assert_eq!(campaign.campaign_id, format!("{template}-2026-11-03"));
        }
    }
    // The referral is only shown on a healthy car.
    let h = ContactHistory::new();
    let d = s.decide(
        &Event::InCell,
        &ctx(l("passenger veteran mature active retained"), BOTH, &h),
        at(T0),
    );
    let Action::Campaign { campaign } = acted(&d)[0].1 else {
        panic!("{d:?}")
    };
    assert!(campaign.target.no_active_faults);
}

/// The dealer's suggestion on service due, as the README's "The fleet" says: by layer.
fn expected_service_suggestion(x: &Layers) -> &'static str {
    match (x.activity, x.car) {
        (Activity::Declining, _) => "Declining driver: a personal call is recommended.",
        (Activity::Churned, _) => "Churned driver: call, and offer pick-up and return of the car.",
        (Activity::Dormant, _) => {
            "Dormant driver: call to check the car is still in use before booking."
        }
        (Activity::Active, CarMaturity::Novice) => {
            "New to the car: explain what the service covers and that it keeps the warranty."
        }
        (Activity::Active, _) => "Active driver: send the booking link with two free slots.",
    }
}

#[test]
fn service_due_always_tells_the_dealer_with_a_suggestion_by_layer() {
    let s = default_strategies();
    // A driver at the cap, contacted an hour ago: service is not marketing.
    let mut busy = ContactHistory::new();
    for i in 0..4 {
        busy.record(
            &Decision {
                rule: "x".into(),
                engagement: true,
                outcome: Outcome::Act(Action::Nothing),
            },
            at(T0 - (4 - i) * HOUR),
        );
    }
    let opted_out = Consents {
        partner_sharing: true,
        engagement: false,
    };
    for x in Layers::every_cell() {
        for (history, consents) in [
            (&ContactHistory::new(), BOTH),
            (&busy, BOTH),
            (&busy, opted_out),
        ] {
            let d = s.decide(
                &Event::MaintenanceDue { item: "oil".into() },
                &ctx(x, consents, history),
                at(T0),
            );
            assert_eq!(
                acted(&d),
                vec![(
                    "service_due_dealer",
                    &Action::PartnerTask {
                        target: PartnerTarget::Dealer,
                        task: "Service due: oil. Offer the driver an appointment.".into(),
                        suggestion: expected_service_suggestion(&x).into(),
                    }
                )],
                "{x:?}"
            );
            assert!(!d[0].engagement);
        }
        // Without the consent to share, the dealer is not told.
        let no_sharing = Consents {
            partner_sharing: false,
            engagement: true,
        };
        let h = ContactHistory::new();
        let d = s.decide(
            &Event::MaintenanceDue { item: "oil".into() },
            &ctx(x, no_sharing, &h),
            at(T0),
        );
        assert_eq!(
            d[0].outcome,
            Outcome::Suppressed {
                reason: SuppressReason::NoSharingConsent
            }
        );
    }
}

#[test]
fn a_critical_fault_tells_the_dealer_in_every_cell() {
    let s = default_strategies();
    let h = ContactHistory::new();
    for x in Layers::every_cell() {
        let d = s.decide(
            &Event::CriticalFault {
                code: "P0133".parse().unwrap(),
            },
            &ctx(x, BOTH, &h),
            at(T0),
        );
        let suggestion = if x.category == Category::Commercial {
            "Commercial vehicle: uptime is income; offer the first slot or a mobile repair."
        } else {
            "Offer the first free slot and, if the car should not be driven, towing."
        };
        assert_eq!(
            acted(&d),
            vec![(
                "critical_fault_dealer",
                &Action::PartnerTask {
                    target: PartnerTarget::Dealer,
                    task: "Critical fault P0133 reported by the car. Contact the driver today."
                        .into(),
                    suggestion: suggestion.into(),
                }
            )]
        );
    }
}

#[test]
fn the_dealer_call_for_a_lost_mature_driver_needs_both_consents() {
    let s = default_strategies();
    let h = ContactHistory::new();
    let to = l("passenger veteran mature churned retained");
    let from = Some(l("passenger veteran mature declining retained"));
    let event = Event::LayerChanged { from, to };
    let d = s.decide(&event, &ctx(to, BOTH, &h), at(T0));
    let Action::PartnerTask {
        target, suggestion, ..
    } = acted(&d)[0].1
    else {
        panic!("{d:?}")
    };
    assert_eq!(*target, PartnerTarget::Dealer);
    assert!(
        suggestion.starts_with("Churned recently: a personal call"),
        "{suggestion}"
    );
    for (consents, reason) in [
        (
            Consents {
                partner_sharing: true,
                engagement: false,
            },
            SuppressReason::NoEngagementConsent,
        ),
        (
            Consents {
                partner_sharing: false,
                engagement: true,
            },
            SuppressReason::NoSharingConsent,
        ),
    ] {
        let d = s.decide(&event, &ctx(to, consents, &h), at(T0));
        assert_eq!(d[0].outcome, Outcome::Suppressed { reason });
    }
}

#[test]
fn an_opted_out_driver_gets_no_default_campaign() {
    let s = default_strategies();
    let h = ContactHistory::new();
    let out = Consents {
        partner_sharing: true,
        engagement: false,
    };
    for x in Layers::every_cell() {
        for event in [Event::InCell, Event::LayerChanged { from: None, to: x }] {
            let d = s.decide(&event, &ctx(x, out, &h), at(T0));
            assert!(acted(&d).is_empty(), "{x:?}: {d:?}");
            assert!(d.iter().all(|d| d.outcome
                == Outcome::Suppressed {
                    reason: SuppressReason::NoEngagementConsent
                }));
        }
        assert_eq!(s.next_in_cell(&ctx(x, out, &h), at(T0)), None);
    }
}

/// Every event kind starts a campaign and a partner task: the limits alone keep it in check.
fn aggressive(active: u32, declining: u32, churned: u32, dormant: u32, cap: u32) -> Strategies {
    let mut text = format!(
        "[cadence]\nactive = {active}\ndeclining = {declining}\nchurned = {churned}\ndormant = {dormant}\nmax_campaigns_per_30_days = {cap}\n\
         [campaign.c]\ntitle = \"c\"\ntext = \"c\"\nvalid_days = 1\n"
    );
    for on in [
        "layer_changed",
        "in_cell",
        "maintenance_due",
        "critical_fault",
    ] {
        text += &format!(
            "[[rule]]\nname = \"{on}_campaign\"\non = \"{on}\"\ndo = \"campaign\"\ncampaign = \"c\"\n"
        );
        text += &format!(
            "[[rule]]\nname = \"{on}_task\"\non = \"{on}\"\ndo = \"partner_task\"\npartner = \"fallback\"\ntask = \"t\"\n"
        );
    }
    Strategies::from_toml("aggressive.toml", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn step_strategy() -> impl Strategy<Value = (u64, u8, usize, u8)> {
    (
        prop_oneof![Just(0u64), 0..HOUR, 0..(5 * DAY_MS)],
        0u8..4,
        0usize..216,
        0u8..4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Never two engagement contacts closer than the cadence of the driver's layer at the
    /// second; never more than the cap in any 30 days; never a contact without its consent;
    /// and `next_in_cell` says "now" exactly when an `in_cell` offer would act.
    #[test]
    fn cadence_cap_and_consents_hold_over_random_sequences(
        which in 0usize..4,
        start in prop::sample::select(vec![Activity::Active, Activity::Dormant]),
        steps in prop::collection::vec(step_strategy(), 1..250),
    ) {
        let s = match which {
            0 => default_strategies(),
            1 => aggressive(3, 7, 7, 30, 4),
            2 => aggressive(1, 1, 2, 5, 2),
            _ => aggressive(2, 9, 14, 60, 10),
        };
        let cells = Layers::every_cell();
        let mut layers = l("passenger novice growing active new");
        layers.activity = start;
        let mut h = ContactHistory::new();
        let mut now = T0;
        let mut contacts: Vec<(u64, Activity)> = Vec::new();
        for (delta, kind, cell, consent_bits) in steps {
            now += delta;
            let consents = Consents { partner_sharing: consent_bits & 1 != 0, engagement: consent_bits & 2 != 0 };
            let event = match kind {
                0 => {
                    let to = cells[cell];
                    let e = Event::LayerChanged { from: Some(layers), to };
                    layers = to;
                    e
                }
                1 => Event::InCell,
                2 => Event::MaintenanceDue { item: "oil".into() },
                _ => Event::CriticalFault { code: "P0133".parse().unwrap() },
            };
            let c = ctx(layers, consents, &h);
            let next = s.next_in_cell(&c, at(now));
            let d = s.decide(&event, &c, at(now));
            if event == Event::InCell {
                prop_assert_eq!(next.is_some_and(|t| t <= at(now)), !acted(&d).is_empty());
            }
            if let Some(t) = next {
                prop_assert!(t >= at(now));
            }
            for d in &d {
                if let Outcome::Act(action) = &d.outcome {
                    match action {
                        Action::Campaign { .. } => prop_assert!(consents.engagement && d.engagement),
                        Action::PartnerTask { .. } => {
                            prop_assert!(consents.partner_sharing);
                            prop_assert!(!d.engagement || consents.engagement);
                        }
                        Action::Nothing => {}
                    }
                    if d.engagement {
                        contacts.push((now, layers.activity));
                    }
                }
                h.record(d, at(now));
            }
        }
        let cadence = *s.cadence();
        for pair in contacts.windows(2) {
            let ((t1, _), (t2, activity)) = (pair[0], pair[1]);
            prop_assert!(
                t2 - t1 >= u64::from(cadence.days(activity)) * DAY_MS,
                "{:?} then {:?} ({:?})", t1, t2, activity
            );
        }
        for (i, (t, _)) in contacts.iter().enumerate() {
            let in_window = contacts[..=i].iter().filter(|(x, _)| t - x < CAP_WINDOW_MS).count();
            prop_assert!(in_window <= cadence.max_campaigns_per_30_days as usize);
        }
        prop_assert!(h.engagements().len() <= MAX_RECENT);
    }
}
