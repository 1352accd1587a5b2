//! The poller against scripted ECUs: discovery, spacing, silence, responsePending, refused
//! DIDs, flow control, and several UDS ECUs taking turns.
#![allow(clippy::unwrap_used)]
use super::*;
use embedded_can::Frame;
use std::collections::BTreeMap;

const MS: Duration = Duration::from_millis(1);

fn bitmap(base: u8, pids: &[u8]) -> [u8; 4] {
    let mut m = 0u32;
    for p in pids {
        m |= 1 << (31 - u32::from(p - base - 1));
    }
    m.to_be_bytes()
}

fn sf(id: u32, payload: &[u8]) -> CanFrame {
    let mut d = [0xAAu8; 8];
    d[0] = payload.len() as u8;
    d[1..=payload.len()].copy_from_slice(payload);
    CanFrame::from_raw(id, false, &d).unwrap()
}

fn cfg() -> Settings {
    Settings {
        obd: Some(ObdTarget {
            extended: false,
            pids: vec![0x0D, 0x1F, 0x31, 0xA6, 0x5C],
            dtc_modes: vec![DtcMode::Stored],
        }),
        ..Settings::default()
    }
}

/// Runs the poller to `until`, answering each request with `answer`; returns every frame sent
/// with its time.
fn run(
    p: &mut Poller,
    from: Duration,
    until: Duration,
    mut answer: impl FnMut(&CanFrame) -> Vec<CanFrame>,
) -> Vec<(Duration, CanFrame)> {
    let mut sent = Vec::new();
    let mut now = from;
    let mut out = Vec::new();
    while now < until {
        p.poll(now, &mut out);
        while let Some(req) = out.pop() {
            sent.push((now, req));
            for a in answer(&req) {
                p.on_frame(&a, now + MS, &mut out);
            }
        }
        now += MS;
    }
    sent
}

/// Two ECUs: the engine (0x7E8) advertises a chain of bitmaps down to 0xA6; the gearbox
/// (0x7E9) only 0x0D.
fn two_ecus(req: &CanFrame) -> Vec<CanFrame> {
    let d = req.data();
    if req.raw_id() != 0x7DF || d[1] != 0x01 {
        return vec![];
    }
    let engine: &[(u8, &[u8])] = &[
        (0x00, &[0x01, 0x0D, 0x1F, 0x20]),
        (0x20, &[0x31, 0x40]),
        (0x40, &[0x60]),
        (0x60, &[0x80]),
        (0x80, &[0xA0]),
        (0xA0, &[0xA6]),
    ];
    let mut out = vec![];
    if d[0] == 2 && d[2].is_multiple_of(0x20) {
        let base = d[2];
        if let Some((_, pids)) = engine.iter().find(|(b, _)| *b == base) {
            let m = bitmap(base, pids);
            out.push(sf(0x7E8, &[0x41, base, m[0], m[1], m[2], m[3]]));
        }
        if base == 0 {
            let m = bitmap(0, &[0x0D]);
            out.push(sf(0x7E9, &[0x41, 0, m[0], m[1], m[2], m[3]]));
        }
    }
    out
}

#[test]
fn off_asks_nothing() {
    let mut p = Poller::new(cfg());
    let sent = run(&mut p, Duration::ZERO, Duration::from_secs(60), two_ecus);
    assert!(sent.is_empty());
}

#[test]
fn discovery_follows_the_bitmap_chain_and_never_asks_unsupported_pids() {
    let mut p = Poller::new(cfg());
    p.set_power(PowerState::On, Duration::ZERO);
    let sent = run(&mut p, Duration::ZERO, Duration::from_secs(5), two_ecus);
    let asked: Vec<u8> = sent
        .iter()
        .filter(|(_, f)| f.data()[0] == 2 && f.data()[1] == 1 && f.data()[2] % 0x20 == 0)
        .map(|(_, f)| f.data()[2])
        .take(6)
        .collect();
    assert_eq!(asked, [0x00, 0x20, 0x40, 0x60, 0x80, 0xA0]);
    assert_eq!(p.polled_pids(), &[0x0D, 0x1F, 0x31, 0xA6]);
    let data: Vec<&[u8]> = sent
        .iter()
        .map(|(_, f)| f.data())
        .filter(|d| d[1] == 0x01 && d[0] > 2)
        .collect();
    assert!(!data.is_empty());
    for d in &data {
        assert_eq!(
            &d[..6],
            &[5, 0x01, 0x0D, 0x1F, 0x31, 0xA6],
            "one request, 4 PIDs"
        );
    }
    assert!(
        sent.iter()
            .all(|(_, f)| !f.data()[2..].contains(&0x5C) || f.data()[1] != 1),
        "0x5C is supported by no ECU and is never asked"
    );
    assert!(
        sent.iter().any(|(_, f)| f.data()[..2] == [1, 0x03]),
        "mode 03 asked"
    );
    assert_eq!(p.supported_pids().len(), 2);
}

fn target(name: &str, request_id: u32, response_id: u32, dids: &[u16]) -> UdsTarget {
    UdsTarget {
        name: name.into(),
        request_id,
        response_id,
        extended: false,
        address: None,
        dids: dids.to_vec(),
        dtc_status_mask: None,
    }
}

#[test]
fn requests_are_spaced_and_a_silent_ecu_is_backed_off() {
    let mut c = cfg();
    let mut silent = target("cluster", 0x714, 0x77E, &[0xF1A0, 0x0101, 0x0102]);
    silent.dtc_status_mask = Some(0x09);
    c.uds = vec![silent];
    let mut p = Poller::new(c);
    p.set_power(PowerState::On, Duration::ZERO);
    // Nobody answers anything, for ten one-second rounds.
    let sent = run(&mut p, Duration::ZERO, Duration::from_secs(10), |_| vec![]);
    for w in sent.windows(2) {
        assert!(w[1].0 - w[0].0 >= Duration::from_millis(20), "min gap kept");
    }
    let uds_asked = sent.iter().filter(|(_, f)| f.raw_id() == 0x714).count();
    let stats = p.uds_stats()[0].1;
    // A miss costs the rest of the round; after three, probes 2 then 4 rounds apart: rounds
    // 0, 1, 2, 4 and 8.
    assert_eq!(uds_asked, 5, "{stats:?}");
    assert_eq!(stats.timeouts, 5);
    assert_eq!(stats.rounds, 5);
    assert_eq!(stats.skipped_rounds, 5);
    let discovery = sent
        .iter()
        .filter(|(_, f)| f.raw_id() == 0x7DF && f.data()[..3] == [2, 0x01, 0x00])
        .count();
    assert_eq!(
        discovery, 10,
        "OBD-II discovery retried every round meanwhile"
    );
    assert!(p.stats().timeouts >= 15);
}

/// A positive answer from `id` to a single-frame 0x22 request.
fn did_answer(id: u32, req: &CanFrame) -> CanFrame {
    let d = req.data();
    sf(id, &[0x62, d[2], d[3], 0x01, 0x02, 0x03])
}

#[test]
fn ecus_take_turns_and_neither_silence_nor_slowness_stalls_the_others() {
    let c = Settings {
        uds: vec![
            target("engine", 0x7E0, 0x7E8, &[0xF1A0, 0xF190]),
            target("gateway", 0x710, 0x77A, &[0xF1A0, 0xF190]),
            target("body", 0x720, 0x72A, &[0xF1A0, 0xF190]),
        ],
        ..Settings::default()
    };
    let mut p = Poller::new(c);
    p.set_power(PowerState::On, Duration::ZERO);
    let mut out = Vec::new();
    let mut slow_owed: Vec<(Duration, CanFrame)> = Vec::new();
    let mut sent: Vec<(Duration, CanFrame)> = Vec::new();
    let mut now = Duration::ZERO;
    while now < Duration::from_secs(20) {
        // The body ECU's slow answers, 400 ms after its responsePending.
        let (due, later): (Vec<_>, Vec<_>) = slow_owed.drain(..).partition(|(t, _)| *t <= now);
        slow_owed = later;
        for (_, req) in due {
            p.on_frame(&did_answer(0x72A, &req), now, &mut out);
        }
        p.poll(now, &mut out);
        for req in std::mem::take(&mut out) {
            sent.push((now, req));
            match req.raw_id() {
                0x7E0 => p.on_frame(&did_answer(0x7E8, &req), now + MS, &mut out),
                0x720 => {
                    p.on_frame(&sf(0x72A, &[0x7F, 0x22, 0x78]), now + MS, &mut out);
                    slow_owed.push((now + 400 * MS, req));
                }
                _ => {} // the gateway never answers
            }
        }
        now += MS;
    }
    let stats: BTreeMap<String, UdsEcuStats> = p.uds_stats().into_iter().collect();
    let (engine, gateway, body) = (stats["engine"], stats["gateway"], stats["body"]);
    // Twenty one-second rounds: the engine is asked both DIDs in every one of them, and
    // everything it was asked was answered.
    assert_eq!(engine.rounds, 20, "{stats:?}");
    assert_eq!(engine.requests, 40);
    assert_eq!(engine.answers, 40);
    assert_eq!(engine.timeouts, 0);
    // The slow one too, each answer after a responsePending.
    assert_eq!(body.rounds, 20);
    assert_eq!(body.requests, 40);
    assert_eq!(body.pending, 40);
    assert_eq!(body.answers, 40);
    assert_eq!(body.timeouts, 0);
    // The silent one: three misses, then probes every 2, 4, 8, 16 rounds.
    assert_eq!(gateway.answers, 0);
    assert_eq!(gateway.timeouts, gateway.requests);
    assert_eq!(gateway.rounds, 6, "{gateway:?}");
    assert_eq!(gateway.skipped_rounds, 14);
    // Requests alternate between ECUs: the first round starts engine, gateway, body.
    let first: Vec<u32> = sent.iter().take(3).map(|(_, f)| f.raw_id()).collect();
    assert_eq!(first, [0x7E0, 0x710, 0x720]);
    for w in sent.windows(2) {
        assert!(w[1].0 - w[0].0 >= Duration::from_millis(20), "min gap kept");
    }
}

#[test]
fn extended_addressing_puts_the_target_address_first_and_reads_answers_to_us() {
    let mut t = target("door", 0x6F1, 0x640, &[0xF1A0]);
    t.address = Some((0x40, 0xF1));
    let c = Settings {
        uds: vec![t],
        ..Settings::default()
    };
    let mut p = Poller::new(c);
    p.set_power(PowerState::On, Duration::ZERO);
    let mut out = Vec::new();
    p.poll(Duration::ZERO, &mut out);
    let req = out.pop().unwrap();
    // 40 = target address | 03 = SF length 3 | 22 F1 A0 | padding
    assert_eq!(req.raw_id(), 0x6F1);
    assert_eq!(req.data(), [0x40, 0x03, 0x22, 0xF1, 0xA0, 0xCC, 0xCC, 0xCC]);
    // An answer addressed to another tester is not ours.
    let other = CanFrame::from_raw(0x640, false, &[0xF2, 0x04, 0x62, 0xF1, 0xA0, 0x01]).unwrap();
    p.on_frame(&other, MS, &mut out);
    assert_eq!(p.uds_stats()[0].1.answers, 0);
    // F1 | 10 07 = FF length 7 | 62 F1 A0 00 01
    let ff = CanFrame::from_raw(
        0x640,
        false,
        &[0xF1, 0x10, 0x07, 0x62, 0xF1, 0xA0, 0x00, 0x01],
    )
    .unwrap();
    p.on_frame(&ff, 2 * MS, &mut out);
    let fc = out.pop().unwrap();
    assert_eq!(fc.raw_id(), 0x6F1);
    assert_eq!(
        fc.data()[..2],
        [0x40, 0x30],
        "flow control to the ECU's address"
    );
    // F1 | 21 | 02 02
    let cf = CanFrame::from_raw(0x640, false, &[0xF1, 0x21, 0x02, 0x02]).unwrap();
    p.on_frame(&cf, 3 * MS, &mut out);
    let stats = p.uds_stats()[0].1;
    assert_eq!((stats.requests, stats.answers, stats.timeouts), (1, 1, 0));
}

#[test]
fn uds_pending_waits_and_refused_dids_are_dropped() {
    let c = Settings {
        uds: vec![target("cluster", 0x714, 0x77E, &[0xF1A0, 0x0BAD])],
        ..Settings::default()
    };
    let mut p = Poller::new(c);
    p.set_power(PowerState::On, Duration::ZERO);
    let mut out = Vec::new();
    p.poll(Duration::ZERO, &mut out);
    assert_eq!(out.pop().unwrap().data()[..4], [3, 0x22, 0xF1, 0xA0]);
    // 0x78: keep waiting well past the normal 100 ms.
    p.on_frame(&sf(0x77E, &[0x7F, 0x22, 0x78]), 10 * MS, &mut out);
    p.poll(500 * MS, &mut out);
    assert!(out.is_empty(), "still waiting for the pending answer");
    p.on_frame(
        &sf(0x77E, &[0x62, 0xF1, 0xA0, 0x01, 0x02, 0x03]),
        600 * MS,
        &mut out,
    );
    p.poll(620 * MS, &mut out);
    assert_eq!(out.pop().unwrap().data()[..4], [3, 0x22, 0x0B, 0xAD]);
    p.on_frame(&sf(0x77E, &[0x7F, 0x22, 0x31]), 630 * MS, &mut out);
    let sent = run(&mut p, 640 * MS, Duration::from_secs(5), |req| {
        vec![did_answer(0x77E, req)]
    });
    assert!(
        sent.iter().all(|(_, f)| f.data()[2..4] != [0x0B, 0xAD]),
        "0x0BAD never again"
    );
    assert!(
        sent.iter()
            .filter(|(_, f)| f.data()[2..4] == [0xF1, 0xA0])
            .count()
            >= 4
    );
    assert_eq!(p.stats().pending, 1);
}

#[test]
fn multi_frame_answers_get_flow_control_on_the_physical_id() {
    let mut c = cfg();
    c.obd.as_mut().unwrap().pids = vec![];
    let mut p = Poller::new(c);
    p.set_power(PowerState::On, Duration::ZERO);
    let mut out = Vec::new();
    // Discovery first; answer it so DTCs follow.
    p.poll(Duration::ZERO, &mut out);
    out.clear();
    let m = bitmap(0, &[0x01]);
    p.on_frame(&sf(0x7E8, &[0x41, 0, m[0], m[1], m[2], m[3]]), MS, &mut out);
    let mut now = 2 * MS;
    let mut asked_mode3 = false;
    while now < Duration::from_secs(1) && !asked_mode3 {
        p.poll(now, &mut out);
        asked_mode3 = out.drain(..).any(|f| f.data()[..2] == [1, 0x03]);
        now += MS;
    }
    assert!(asked_mode3);
    // A first frame of 10 bytes (43 03 + 3 codes + padding) from 0x7E8.
    let ff = CanFrame::from_raw(
        0x7E8,
        false,
        &[0x10, 0x08, 0x43, 0x03, 0x01, 0x33, 0x02, 0x01],
    )
    .unwrap();
    p.on_frame(&ff, now, &mut out);
    let fc = out.pop().unwrap();
    assert_eq!(
        fc.raw_id(),
        0x7E0,
        "flow control goes to the ECU's physical id"
    );
    assert_eq!(fc.data()[0] & 0xF0, 0x30);
}
