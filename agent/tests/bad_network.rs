//! A bad network between the car and the cloud: the real `rapport-agent` binary drives the
//! simulated car inside a network namespace of its own (`rapport_harness::netns`), and reaches
//! the real cloud (its embedded broker, its ingest, its sled store, in this process) only over
//! a veth link, through a seeded fault-injecting proxy on the host's end of the link
//! (`rapport_harness::faulty`). Each test injects one fault — late segments, a broker that
//! stops answering, a long partition, a flapping link — and then checks the same things: every
//! record the agent wrote (its store's dump) was applied by the cloud exactly once or is still
//! in the agent's outbox, with no gap; the outbox stayed within its bound (the heartbeats'
//! depths, nothing dropped); and the reconnects are counted (the agent's log, the proxy's
//! counters).
//!
//! The desk car runs on a scaled clock (`--speedup`); the sync's own timers (keep-alive,
//! backoff, the 10 s connect timeout) run in real time. So the partition is 10 minutes of the
//! car's clock at speedup 20 with the backoff's bounds divided by 20 (the shape of a 10-minute
//! partition with the default bounds, in 30 s); `RAPPORT_LONG=1` runs it for 10 minutes of wall
//! time with the default bounds instead, and the flapping for its full 5 minutes.
//!
//! Without permission for network namespaces the tests print `skipping: …` and pass;
//! `RAPPORT_REQUIRE_NETNS=1` makes that a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rapport_agent::config::Sync;
use rapport_cloud::cloud::Cloud;
use rapport_harness::agent::{self, AgentProcess};
use rapport_harness::cloud::{self, BrokerKind};
use rapport_harness::faulty::{Faults, FaultyProxy, ProxyEvent};
use rapport_harness::netns::Netns;
use rapport_harness::process::{Signal, cpu_time};
use rapport_shared::Vin;
use rapport_shared::v1::uplink::RecordBody;
use tokio::time::Instant;

const AGENT: &str = env!("CARGO_BIN_EXE_rapport-agent");
/// The car's clock runs this much faster than the wall's.
const SPEEDUP: u32 = 20;
/// The outbox's bound in these tests (records).
const OUTBOX_BOUND: u64 = 20_000;
/// The VIN of `config/passenger.toml`.
const VIN: &str = "WVWZZZ1KZ8W012345";
/// The agent's log: warnings, and the sync's connects and reconnects.
const LOG_LEVEL: &str = "warn,rapport_agent::sync=info";

fn long() -> bool {
    std::env::var_os("RAPPORT_LONG").is_some_and(|v| !v.is_empty() && v != "0")
}

/// A car whose script runs `power = running`, a short park, a drive at 120 km/h for
/// `drive_s` simulated seconds, and a long park (only heartbeats then).
fn script(drive_s: u64) -> String {
    format!(
        r#"
odometer_m = 20000000
[[steps]]
power = "running"
[[steps]]
park = {{ secs = 5 }}
[[steps]]
drive = {{ kmh = 120, secs = {drive_s} }}
[[steps]]
park = {{ secs = 360000 }}
"#
    )
}

/// The cloud, the namespace, the proxy and the agent's files.
struct Bed {
    cloud: Cloud,
    proxy: FaultyProxy,
    dir: PathBuf,
    config: PathBuf,
    script: PathBuf,
    log: PathBuf,
    vin: Vin,
    /// Simulated seconds from the start to the end of the drive.
    until_parked_s: u64,
    /// Last: dropped after everything that uses it.
    netns: Netns,
}

impl Bed {
    /// `None` (the skip printed) without network namespaces.
    async fn new(
        label: &str,
        faults: Faults,
        drive_s: u64,
        tune: impl FnOnce(&mut Sync),
    ) -> Option<Self> {
        let netns = Netns::create().unwrap()?;
        let dir =
            std::env::temp_dir().join(format!("rapport-badnet-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cc = cloud::config(&dir, BrokerKind::Embedded, &format!("badnet-{label}")).unwrap();
        cc.store.path = dir.join("cloud");
        let cloud = Cloud::start(&cc).await.unwrap();
        assert!(cloud.wait_subscribed(Duration::from_secs(20)).await);
        let broker = cloud.ready().broker.unwrap();
        let proxy = FaultyProxy::start(SocketAddr::from((netns.host_addr(), 0)), broker, faults)
            .await
            .unwrap();
        let mut c = agent::syncing_passenger(&dir, proxy.addr()).unwrap();
        c.outbox.odometer_every_m = 100;
        c.outbox.max_records = OUTBOX_BOUND;
        let sync = c.sync.as_mut().unwrap();
        sync.heartbeat_s = 2;
        tune(sync);
        let config = agent::write(&c, &dir).unwrap();
        let script_path = dir.join("script.toml");
        std::fs::write(&script_path, script(drive_s)).unwrap();
        Some(Self {
            cloud,
            proxy,
            log: dir.join("agent.log"),
            config,
            script: script_path,
            dir,
            vin: VIN.parse().unwrap(),
            until_parked_s: 5 + drive_s,
            netns,
        })
    }

    /// The agent inside the namespace, its log in `agent.log`; and when its car will be
    /// parked.
    fn start_agent(&self, speedup: u32) -> (AgentProcess, Instant) {
        let parked_at =
            Instant::now() + Duration::from_millis(self.until_parked_s * 1000 / u64::from(speedup));
        let agent = AgentProcess::run_with(
            self.netns.command(AGENT),
            agent::sim_args(&self.config, &self.script, speedup),
            LOG_LEVEL,
            Some(&self.log),
        )
        .unwrap_or_else(|e| panic!("the agent did not start: {e}"));
        (agent, parked_at)
    }

    /// The cloud's applied seqs: (through, max) — contiguous from 1 up to `through`.
    fn applied(&self) -> (u64, u64) {
        self.cloud
            .store()
            .vehicle(&self.vin)
            .unwrap()
            .map_or((0, 0), |v| (v.applied.through(), v.applied.max()))
    }

    /// Waits until the cloud applied at least `n` records without a gap.
    async fn wait_applied(&self, n: u64, within: Duration, what: &str) {
        rapport_harness::wait::wait_until(within, what, || self.applied().0 >= n).await;
    }

    /// Lets the agent drain — once the car is parked (`parked_at`), until the cloud holds
    /// every seq without a gap and its two newest records are heartbeats: the agent writes a
    /// heartbeat after everything before it and sends in seq order, so all it wrote before
    /// went through — then stops it with SIGTERM, and checks every seq the agent wrote:
    /// applied once by the cloud or still in the agent's outbox, never lost, never twice; the
    /// outbox within its bound. Returns the figures.
    async fn drain_and_check(
        &self,
        mut agent: AgentProcess,
        parked_at: Instant,
        within: Duration,
    ) -> Checked {
        tokio::time::sleep_until(parked_at + Duration::from_secs(1)).await;
        let deadline = Instant::now() + within;
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (through, max) = self.applied();
            let newest_heartbeats = self
                .cloud
                .store()
                .records_newest_first(&self.vin, None)
                .take(2)
                .filter(|r| matches!(r, Ok(r) if matches!(r.body, RecordBody::Heartbeat(_))))
                .count();
            if through == max && through > 0 && newest_heartbeats == 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the agent did not drain within {within:?}: cloud through {through}, max {max}; \
                 proxy {:?}; agent log:\n{}",
                self.proxy.counters(),
                rapport_harness::process::log_tail(&self.log)
            );
        }
        agent.process.signal(Signal::Term).unwrap();
        let status = agent.process.wait().unwrap();
        assert!(status.success(), "clean shutdown on SIGTERM: {status}");

        let (held, next_seq) = outbox(&self.config);
        let last = next_seq - 1;
        let v = self
            .cloud
            .store()
            .vehicle(&self.vin)
            .unwrap()
            .expect("the cloud knows the car");
        for seq in 1..=last {
            assert!(
                v.applied.contains(seq) || held.contains(&seq),
                "seq {seq} is neither in the agent's outbox nor applied by the cloud (lost)"
            );
        }
        assert!(
            v.applied.max() <= last,
            "the cloud applied a seq the agent never wrote"
        );
        let distinct = (1..=last).filter(|s| v.applied.contains(*s)).count() as u64;
        let counted: u64 = v.counts.iter().sum();
        assert_eq!(counted, distinct, "each record applied exactly once");
        assert!(
            held.len() <= 3,
            "the agent drained its outbox: {} records still held",
            held.len()
        );
        // The outbox's depth as the agent reported it in its heartbeats.
        let mut max_depth = 0;
        let mut dropped = 0;
        let mut heartbeats = 0;
        for r in self.cloud.store().records(&self.vin, 0, 1_000_000).unwrap() {
            if let RecordBody::Heartbeat(h) = &r.body {
                heartbeats += 1;
                max_depth = max_depth.max(h.outbox_depth);
                dropped += h.records_dropped;
            }
        }
        assert!(heartbeats > 0, "heartbeats arrived");
        assert!(
            max_depth <= OUTBOX_BOUND,
            "the outbox held {max_depth} records, over its bound {OUTBOX_BOUND}"
        );
        assert_eq!(dropped, 0, "no record dropped from a full outbox");
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(!log.contains("outbox full"), "no record dropped: {log}");
        Checked {
            records: last,
            applied: distinct,
            held: held.len(),
            max_depth,
            heartbeats,
        }
    }

    async fn finish(self) {
        let Self { cloud, dir, .. } = self;
        cloud.shutdown().await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// What [`Bed::drain_and_check`] checked.
#[derive(Debug)]
#[allow(dead_code)] // printed
struct Checked {
    /// Seqs the agent wrote (1..=records).
    records: u64,
    /// Of those, applied by the cloud (each once).
    applied: u64,
    /// Still in the agent's outbox at the end.
    held: usize,
    /// The deepest outbox a heartbeat reported.
    max_depth: u64,
    /// Heartbeats the cloud received.
    heartbeats: u64,
}

/// The agent's outbox seqs and next seq, from `rapport-agent store` (agent stopped).
fn outbox(config: &Path) -> (BTreeSet<u64>, u64) {
    let mut seqs = BTreeSet::new();
    let mut next = 0;
    for v in agent::store_dump(AGENT, config).unwrap() {
        match v["kind"].as_str() {
            Some("outbox") => {
                seqs.insert(v["seq"].as_u64().unwrap());
            }
            Some("vehicle") => next = v["next_seq"].as_u64().unwrap(),
            _ => {}
        }
    }
    (seqs, next)
}

/// One line of the agent's log about the sync's connection.
#[derive(Debug, Clone)]
struct LinkLine {
    /// When (the log's UTC time).
    at: SystemTime,
    /// `connected` or `lost` (a failed attempt or a dropped connection).
    lost: bool,
    /// For `lost`: the wait drawn, the backoff's attempt and its ceiling, ms.
    retry_in_ms: u64,
    attempt: u64,
    ceiling_ms: u64,
}

/// The sync's connection lines of the agent's log, in order.
fn link_lines(log: &Path) -> Vec<LinkLine> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let lost = line.contains("broker connection lost or refused");
            if !lost && !line.contains(" connected ") && !line.ends_with(" connected") {
                return None;
            }
            let at = parse_time(line.split_whitespace().next()?)?;
            let field = |name: &str| -> u64 {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{name}="))?.parse().ok())
                    .unwrap_or(0)
            };
            Some(LinkLine {
                at,
                lost,
                retry_in_ms: field("retry_in_ms"),
                attempt: field("attempt"),
                ceiling_ms: field("ceiling_ms"),
            })
        })
        .collect()
}

/// `2026-12-07T18:40:01.123456Z` → the time it names.
fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, dd) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    let micros: u64 = format!("{frac:0<6}")[..6].parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
}

fn cpu_percent(pid: u32, cpu_before: Duration, wall: Duration) -> f64 {
    let used = cpu_time(pid).unwrap().saturating_sub(cpu_before);
    100.0 * used.as_secs_f64() / wall.as_secs_f64()
}

// --- 1. late segments ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_of_segments_two_seconds_late_everything_arrives_once() {
    let faults = Faults {
        seed: 0x5EED_0001,
        delay_percent: 30,
        delay: Duration::from_secs(2),
        drop_per_mille: 0,
    };
    // 10 simulated minutes of driving: 30 s of wall time.
    let Some(bed) = Bed::new("delay", faults, 600, |_| {}).await else {
        return;
    };
    let started = Instant::now();
    let (agent, parked_at) = bed.start_agent(SPEEDUP);
    bed.wait_applied(20, Duration::from_secs(60), "records through the late link")
        .await;
    let checked = bed
        .drain_and_check(agent, parked_at, Duration::from_secs(120))
        .await;
    let proxy = bed.proxy.counters();
    let lines = link_lines(&bed.log);
    let reconnects = lines.iter().filter(|l| l.lost).count();
    println!(
        "late segments: {checked:?}; proxy {proxy:?}; reconnects {reconnects}; wall {:?}",
        started.elapsed()
    );
    assert!(
        checked.records > 200,
        "the car drove and wrote: {checked:?}"
    );
    assert!(
        proxy.delayed * 100 >= proxy.chunks * 15 && proxy.delayed >= 10,
        "about 30 % of the chunks were late: {proxy:?}"
    );
    bed.finish().await;
}

// --- 2. a broker that stops answering ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_broker_is_noticed_by_the_keep_alive_and_the_agent_reconnects() {
    const KEEP_ALIVE_S: u16 = 5;
    let Some(bed) = Bed::new("stall", Faults::none(2), 600, |s| {
        s.keep_alive_s = KEEP_ALIVE_S;
    })
    .await
    else {
        return;
    };
    let started = Instant::now();
    let (agent, parked_at) = bed.start_agent(SPEEDUP);
    bed.wait_applied(20, Duration::from_secs(60), "records before the stall")
        .await;
    let (before, _) = bed.applied();
    let stalled_at = Instant::now();
    assert_eq!(bed.proxy.stall_open(), 1, "one connection to stall");
    // The agent closes the stalled connection once its keep-alive goes unanswered, and comes
    // back on a new one.
    let closed = |bed: &Bed| {
        bed.proxy
            .events()
            .iter()
            .find_map(|(at, e)| matches!(e, ProxyEvent::ClientClosed(0)).then_some(*at))
    };
    rapport_harness::wait::wait_until(
        Duration::from_secs(60),
        "the agent to give up the stalled connection",
        || closed(&bed).is_some(),
    )
    .await;
    let noticed = closed(&bed).unwrap() - stalled_at;
    rapport_harness::wait::wait_until(Duration::from_secs(60), "a new connection", || {
        bed.proxy.counters().accepted >= 2
    })
    .await;
    let reconnected = bed
        .proxy
        .events()
        .iter()
        .find_map(|(at, e)| matches!(e, ProxyEvent::Accepted(1)).then_some(*at))
        .unwrap()
        - stalled_at;
    bed.wait_applied(
        before + 20,
        Duration::from_secs(60),
        "records after the stall",
    )
    .await;
    let checked = bed
        .drain_and_check(agent, parked_at, Duration::from_secs(120))
        .await;
    let proxy = bed.proxy.counters();
    let lines = link_lines(&bed.log);
    let lost: Vec<&LinkLine> = lines.iter().filter(|l| l.lost).collect();
    println!(
        "stall: noticed after {noticed:?}, new connection after {reconnected:?}; {checked:?}; \
         proxy {proxy:?}; reconnects logged {}; wall {:?}",
        lost.len(),
        started.elapsed()
    );
    // MQTT keep-alive: a ping every keep-alive, the connection given up when the next tick
    // finds the last ping unanswered — between one and two keep-alives. The bound is generous
    // (a loaded machine); without a keep-alive the stalled connection would never be left.
    let keep_alive = Duration::from_secs(u64::from(KEEP_ALIVE_S));
    assert!(
        noticed >= keep_alive - Duration::from_millis(500) && noticed <= 4 * keep_alive,
        "noticed after {noticed:?} with a keep-alive of {keep_alive:?}"
    );
    let log = std::fs::read_to_string(&bed.log).unwrap_or_default();
    assert!(
        log.contains("Last pingreq isn't acked"),
        "the keep-alive gave the connection up: {log}"
    );
    assert!(!lost.is_empty() && proxy.stalled == 1 && proxy.discarded > 0);
    bed.finish().await;
}

// --- 3. a long partition ------------------------------------------------------------------------

/// How a partition test is scaled.
struct Scale {
    speedup: u32,
    backoff_min_ms: u64,
    backoff_max_ms: u64,
    partition: Duration,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_minutes_of_partition_while_driving_backs_off_idles_and_loses_nothing() {
    let defaults = agent::sync_to("mqtt://127.0.0.1:1883").unwrap();
    let scale = if long() {
        // 10 minutes of wall time, the default backoff.
        Scale {
            speedup: 1,
            backoff_min_ms: defaults.backoff_min_ms,
            backoff_max_ms: defaults.backoff_max_ms,
            partition: Duration::from_secs(600),
        }
    } else {
        // 10 minutes of the car's clock; the backoff's bounds scaled by the same factor.
        Scale {
            speedup: SPEEDUP,
            backoff_min_ms: defaults.backoff_min_ms / u64::from(SPEEDUP),
            backoff_max_ms: defaults.backoff_max_ms / u64::from(SPEEDUP),
            partition: Duration::from_secs(600 / u64::from(SPEEDUP)),
        }
    };
    // Drive through the partition and some time after it (simulated seconds).
    let wall_drive = scale.partition + Duration::from_secs(15);
    let drive_s = wall_drive.as_secs() * u64::from(scale.speedup);
    let Some(bed) = Bed::new("partition", Faults::none(3), drive_s, |s| {
        s.keep_alive_s = 5;
        s.backoff_min_ms = scale.backoff_min_ms;
        s.backoff_max_ms = scale.backoff_max_ms;
    })
    .await
    else {
        return;
    };
    let started = Instant::now();
    let (agent, parked_at) = bed.start_agent(scale.speedup);
    let pid = agent.process.id().unwrap();
    bed.wait_applied(10, Duration::from_secs(60), "records before the partition")
        .await;
    // The CPU while connected and driving, for comparison.
    let (cpu0, t0) = (cpu_time(pid).unwrap(), Instant::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu_connected = cpu_percent(pid, cpu0, t0.elapsed());

    let (before, _) = bed.applied();
    bed.netns.cut_car_side().unwrap();
    let (cut_wall, cut_at, cpu_cut) = (SystemTime::now(), Instant::now(), cpu_time(pid).unwrap());
    tokio::time::sleep(scale.partition).await;
    let cpu_partition = cpu_percent(pid, cpu_cut, cut_at.elapsed());
    let (during, _) = bed.applied();
    bed.netns.restore_car_side().unwrap();
    let restored_wall = SystemTime::now();

    bed.wait_applied(
        during + 50,
        Duration::from_secs(60) + scale.partition / 5,
        "records after the partition",
    )
    .await;
    let checked = bed
        .drain_and_check(
            agent,
            parked_at,
            Duration::from_secs(120) + scale.partition / 5,
        )
        .await;

    let lines = link_lines(&bed.log);
    let in_partition: Vec<&LinkLine> = lines
        .iter()
        .filter(|l| l.lost && l.at >= cut_wall && l.at <= restored_wall)
        .collect();
    let ceilings: Vec<u64> = in_partition.iter().map(|l| l.ceiling_ms).collect();
    let waits: Vec<u64> = in_partition.iter().map(|l| l.retry_in_ms).collect();
    let attempts: Vec<u64> = in_partition.iter().map(|l| l.attempt).collect();
    let gaps_ms: Vec<u128> = in_partition
        .windows(2)
        .map(|w| {
            w[1].at
                .duration_since(w[0].at)
                .unwrap_or_default()
                .as_millis()
        })
        .collect();
    println!(
        "partition of {:?} (car's clock ×{}): cpu connected {cpu_connected:.1} %, during the \
         partition {cpu_partition:.1} % of one core; attempts during it {}: attempt numbers \
         {attempts:?}, ceilings ms {ceilings:?}, waits ms {waits:?}, gaps between attempts \
         ms {gaps_ms:?}; applied before {before}, during {during}; {checked:?}; wall {:?}",
        scale.partition,
        scale.speedup,
        in_partition.len(),
        started.elapsed()
    );
    assert!(
        during <= before + 50,
        "nothing crossed the cut link ({before} → {during})"
    );
    // It kept trying, backing off: the ceilings double from the minimum to the maximum and
    // stay there; every wait is within its ceiling. A busy loop would be partition ÷ minimum
    // attempts (600); the backoff allows about 20.
    assert!(in_partition.len() >= 8, "it kept trying: {attempts:?}");
    assert!(
        in_partition.len() <= 50,
        "{} attempts in {:?}: not backing off",
        in_partition.len(),
        scale.partition
    );
    assert!(
        ceilings.windows(2).all(|w| w[0] <= w[1]),
        "ceilings grow: {ceilings:?}"
    );
    assert_eq!(
        ceilings.last().copied(),
        Some(scale.backoff_max_ms),
        "the backoff reached its maximum: {ceilings:?}"
    );
    assert!(
        in_partition
            .iter()
            .all(|l| l.retry_in_ms <= l.ceiling_ms && l.retry_in_ms >= scale.backoff_min_ms),
        "waits within their ceilings: {waits:?} under {ceilings:?}"
    );
    // Natively about 2.5 % (the desk car's 20-fold clock included); under an emulator the
    // figure is the emulator's, so it is only reported there.
    let emulated =
        std::env::var_os(rapport_harness::process::RUNNER_ENV).is_some_and(|v| !v.is_empty());
    assert!(
        emulated || cpu_partition < 20.0,
        "the agent is not spinning during the partition: {cpu_partition:.1} % of one core"
    );
    bed.finish().await;
}

// --- 4. a flapping link --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_flapping_every_five_seconds_loses_nothing_and_applies_nothing_twice() {
    let flapping = if long() {
        Duration::from_secs(300)
    } else {
        Duration::from_secs(50)
    };
    let half = Duration::from_secs(5);
    let drive_s = (flapping + Duration::from_secs(10)).as_secs() * u64::from(SPEEDUP);
    let Some(bed) = Bed::new("flap", Faults::none(4), drive_s, |s| {
        s.keep_alive_s = 5;
        s.backoff_min_ms = 50;
        s.backoff_max_ms = 6_000;
    })
    .await
    else {
        return;
    };
    let started = Instant::now();
    let (agent, parked_at) = bed.start_agent(SPEEDUP);
    bed.wait_applied(10, Duration::from_secs(60), "records before the flapping")
        .await;
    let (before, _) = bed.applied();
    let flap_start = Instant::now();
    let mut cuts = 0;
    let mut forgotten = 0;
    while flap_start.elapsed() < flapping {
        bed.netns.cut().unwrap();
        cuts += 1;
        tokio::time::sleep(half).await;
        // Every second outage the carrier's NAT forgets the connection too: what the car
        // sends after it comes back is answered with a reset. The others TCP rides out.
        if cuts % 2 == 0 {
            forgotten += bed.proxy.drop_open();
        }
        bed.netns.restore().unwrap();
        tokio::time::sleep(half).await;
    }
    let (after_flapping, _) = bed.applied();
    let checked = bed
        .drain_and_check(agent, parked_at, Duration::from_secs(120))
        .await;
    let proxy = bed.proxy.counters();
    let lines = link_lines(&bed.log);
    let lost = lines.iter().filter(|l| l.lost).count();
    let connects = lines.iter().filter(|l| !l.lost).count();
    println!(
        "flapping for {flapping:?} ({cuts} cuts, {forgotten} connections forgotten): connections accepted by the proxy {}, \
         connects logged {connects}, losses/failed attempts logged {lost}; applied {before} \
         before, {after_flapping} at the end of the flapping; {checked:?}; proxy {proxy:?}; \
         wall {:?}",
        proxy.accepted,
        started.elapsed()
    );
    assert!(
        after_flapping > before,
        "records went through between the cuts ({before} → {after_flapping})"
    );
    assert!(
        forgotten >= 2,
        "connections were open to forget: {forgotten}"
    );
    assert!(
        connects > forgotten && lost >= forgotten,
        "each forgotten connection was noticed and made again: {connects} connects, {lost} \
         losses, {forgotten} forgotten"
    );
    bed.finish().await;
}
