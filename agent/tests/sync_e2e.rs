//! Agent and cloud end to end: the real `rapport-agent` binary driving the simulated car and
//! syncing to a real cloud (its embedded broker, its ingest, its sled store, in this process),
//! SIGKILLed mid-publish again and again and restarted on the same data directory. When it has
//! drained, every record the agent ever wrote is applied by the cloud exactly once: each seq
//! the agent no longer holds was applied, nothing above the agent's last seq exists, and the
//! cloud's per-kind counts add up to the distinct seqs applied (no record applied twice).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rapport_cloud::cloud::Cloud;
use rapport_harness::agent::{self, AgentProcess};
use rapport_harness::cloud::{self, BrokerKind};
use rapport_harness::process::Signal;
use rapport_shared::Vin;

const AGENT: &str = env!("CARGO_BIN_EXE_rapport-agent");

fn write_config(dir: &Path, broker: std::net::SocketAddr) -> PathBuf {
    let mut c = agent::syncing_passenger(dir, broker).unwrap();
    c.outbox.odometer_every_m = 100;
    let path = agent::write(&c, dir).unwrap();
    std::fs::write(
        dir.join("script.toml"),
        r#"
odometer_m = 20000000
[[steps]]
power = "running"
[[steps]]
park = { secs = 5 }
[[steps]]
set_fault = { obd = { code = 0x0300, mil = true } }
[[steps]]
drive = { kmh = 120, secs = 600 }
[[steps]]
park = { secs = 3600 }
"#,
    )
    .unwrap();
    path
}

fn start(config: &Path, dir: &Path) -> AgentProcess {
    AgentProcess::sim(AGENT, config, &dir.join("script.toml"), 60)
        .unwrap_or_else(|e| panic!("the agent did not start: {e}"))
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_mid_publish_resends_and_the_cloud_applies_each_record_once() {
    let dir = std::env::temp_dir().join(format!("rapport-sync-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    let mut cc = cloud::config(&dir, BrokerKind::Embedded, "e2e-cloud").unwrap();
    cc.store.path = dir.join("cloud");
    let cloud = Cloud::start(&cc).await.unwrap();
    assert!(cloud.wait_subscribed(Duration::from_secs(10)).await);
    let broker = cloud.ready().broker.unwrap();
    let config = write_config(&dir, broker);
    let vin: Vin = "WVWZZZ1KZ8W012345".parse().unwrap();

    // Kill it mid-stream, again and again: each run drives, writes and publishes.
    let mut pauses = [700u64, 1300, 400, 1900, 900, 1500, 600, 1100].into_iter();
    let mut kills = 0;
    for pause in pauses.by_ref() {
        let mut agent = start(&config, &dir);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        agent.process.kill().unwrap(); // SIGKILL
        kills += 1;
    }
    let (held_after_kills, produced_by_kills) = outbox(&config);

    // A last run that is allowed to drain, then stops with SIGTERM (a clean shutdown).
    let mut agent = start(&config, &dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let applied = cloud
            .store()
            .vehicle(&vin)
            .unwrap()
            .map_or(0, |v| v.applied.through());
        if applied >= produced_by_kills.saturating_sub(1) || Instant::now() > deadline {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    agent.process.signal(Signal::Term).unwrap();
    let status = agent.process.wait().unwrap();
    assert!(status.success(), "clean shutdown on SIGTERM: {status}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (held, next_seq) = outbox(&config);
    let last = next_seq - 1;
    let v = cloud
        .store()
        .vehicle(&vin)
        .unwrap()
        .expect("the cloud knows the car");
    assert!(kills >= 8);
    assert!(
        produced_by_kills > 50,
        "the killed runs wrote records: {produced_by_kills} ({} held)",
        held_after_kills.len()
    );
    for seq in 1..=last {
        if !held.contains(&seq) {
            assert!(
                v.applied.contains(seq),
                "seq {seq} left the agent's outbox but the cloud never applied it (lost)"
            );
        }
    }
    assert!(
        v.applied.max() <= last,
        "the cloud applied a seq the agent never wrote"
    );
    let distinct = (1..=last).filter(|s| v.applied.contains(*s)).count() as u64;
    let counted: u64 = v.counts.iter().sum();
    assert_eq!(counted, distinct, "each record applied exactly once");
    // The last run drained what the killed runs left: none of it is still held. (What the
    // last run itself wrote while driving may still be in flight at SIGTERM: how much depends
    // on the machine's speed, e.g. under qemu, so it is not counted here.)
    let stale: Vec<u64> = held_after_kills
        .iter()
        .copied()
        .filter(|s| held.contains(s))
        .collect();
    assert!(
        stale.is_empty(),
        "the last run drained the outbox: {} of the {} records the killed runs left are still \
         held ({stale:?})",
        stale.len(),
        held_after_kills.len()
    );
    cloud.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
