//! Crash safety of the store with real `kill -9`s.
//!
//! The test re-runs its own binary as a child (`STORE_CRASH_DIR` set, only the
//! `child_process_entry_point` test selected). The child opens the store and commits in a loop;
//! each commit bumps a counter kept in a prompt, adds a prompt `old<n>` and deletes `old<n-1>`,
//! and appends four odometer records whose metres encode the counter, so the parent can tell
//! which commit wrote what. Every third commit is durable, and after it returns the child
//! prints `committed <counter> <last seq>`. It also removes some old records as if acked.
//!
//! The parent kills the child at a random moment (sometimes while it is still opening, i.e.
//! during sled's recovery), reopens the store and checks: it opens; every record of every
//! commit reported durable is there (bar the ones the child removed); a commit is on disk
//! whole or not at all (the remembered counter's records are all there and none newer); the
//! remembered state is the last durable commit or later; no sequence number ever comes back
//! with other content, and the next one is above every one seen.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rapport_agent::memory::{Changes, Memory, PromptRecord, PromptState};
use rapport_agent::store::{Store, StoreOptions};
use rapport_shared::v1::uplink::{OdometerReading, PromptKind, Record, RecordBody, SignalSource};
use rapport_shared::{Odometer, Timestamp};

const CHILD_ENV: &str = "STORE_CRASH_DIR";
/// Kills per run; `STORE_CRASH_KILLS` raises it for a soak.
const KILLS: usize = 60;
const RECORDS_PER_COMMIT: u64 = 4;
const COUNTER: &str = "counter";

fn options() -> StoreOptions {
    StoreOptions {
        max_outbox: 1_000_000,
        flush_every_ms: Some(500),
        ..StoreOptions::default()
    }
}

/// Records whose seq is ≡ 0 mod 7 may be removed by the child (as if acked).
fn removable(seq: u64) -> bool {
    seq.is_multiple_of(7)
}

fn counter_of(memory: &Memory) -> u64 {
    memory
        .prompts
        .get(COUNTER)
        .map_or(0, |p| u64::from(p.times_shown))
}

fn prompt(id: &str, n: u64) -> PromptRecord {
    PromptRecord {
        id: id.into(),
        kind: PromptKind::Milestone,
        subject: "crash".into(),
        critical: false,
        title: "t".into(),
        text: "x".repeat(40),
        created: Timestamp::from_millis(n),
        state: PromptState::Snoozed(Timestamp::from_millis(n)),
        first_shown: None,
        times_shown: u32::try_from(n).unwrap(),
        closed_at: None,
    }
}

/// Metres of record `j` of commit `n`.
fn metres(n: u64, j: u64) -> u64 {
    n * 16 + j
}

fn decode(r: &Record) -> (u64, u64) {
    match &r.body {
        RecordBody::Odometer(o) => (o.odometer.meters() / 16, o.odometer.meters() % 16),
        other => panic!("unexpected record {other:?}"),
    }
}

/// The child's loop: never returns on its own; the parent kills it.
fn run_child(dir: &Path) {
    let (store, mut memory) = Store::open(dir, options()).unwrap();
    println!("ready");
    let mut n = counter_of(&memory);
    loop {
        n += 1;
        let mut changes = Changes::default();
        memory.prompts.insert(COUNTER.into(), prompt(COUNTER, n));
        changes.prompts.insert(COUNTER.into());
        let old = format!("old{}", n - 1);
        memory.prompts.remove(&old);
        changes.prompts.insert(old);
        let new = format!("old{n}");
        memory.prompts.insert(new.clone(), prompt(&new, n));
        changes.prompts.insert(new);
        changes.outbox = (0..RECORDS_PER_COMMIT)
            .map(|j| {
                let body = RecordBody::Odometer(OdometerReading {
                    odometer: Odometer::from_meters(metres(n, j)),
                    source: SignalSource::Obd,
                });
                (Timestamp::from_millis(n), body)
            })
            .collect();
        changes.durable = n.is_multiple_of(3);
        let committed = store.commit(&memory, &changes).unwrap();
        if changes.durable {
            println!("committed {n} {}", committed.seqs.last().unwrap());
        }
        // Ack a few old records now and then.
        if n.is_multiple_of(5) {
            let acked: Vec<u64> = (committed.seqs[0].saturating_sub(40)..committed.seqs[0])
                .filter(|s| removable(*s))
                .collect();
            store.outbox_remove(&acked).unwrap();
        }
    }
}

/// The entry point of the child process; a no-op when the test suite runs normally.
#[test]
fn child_process_entry_point() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        run_child(Path::new(&dir));
    }
}

/// xorshift64*: enough randomness for kill timings, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the parent knows from everything it has seen so far.
#[derive(Default)]
struct Seen {
    /// Every record observed on disk, by seq.
    records: BTreeMap<u64, Record>,
    /// Seqs reported durable by a child.
    durable: BTreeSet<u64>,
    /// The highest counter reported durable.
    durable_counter: u64,
}

/// Spawns a child, kills it at a random moment, and returns its complete output lines.
fn run_and_kill(dir: &Path, rng: &mut Rng) -> Vec<String> {
    let exe = std::env::current_exe().unwrap();
    let mut child = rapport_harness::process::bin_command(exe.to_str().unwrap())
        .args(["--exact", "child_process_entry_point", "--nocapture"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut r = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                // A line cut by the kill has no newline: not a report.
                Ok(_) if line.ends_with('\n') => {
                    if line == "ready\n" || line.starts_with("committed ") {
                        let _ = tx.send(());
                    }
                    lines.push(line.trim_end().to_owned());
                }
                Ok(_) => {}
            }
        }
        lines
    });
    if rng.below(5) == 0 {
        // Kill early: often while sled is still opening and recovering.
        std::thread::sleep(Duration::from_millis(rng.below(30)));
    } else {
        // Wait until it opened and made a few durable commits (however slow the machine, e.g.
        // under qemu), then kill a few milliseconds later: mid-commit, mid-flush or between.
        for _ in 0..=rng.below(6) {
            rx.recv_timeout(Duration::from_secs(60))
                .expect("child did not open the store or commit");
        }
        std::thread::sleep(Duration::from_millis(rng.below(15)));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap()
}

/// Reopens the store after a kill and checks everything the module doc promises.
fn check(dir: &Path, seen: &mut Seen, round: usize) {
    let (store, memory) = Store::open(dir, options())
        .unwrap_or_else(|e| panic!("round {round}: the store does not open after a kill: {e}"));
    let records = store.outbox_from(0, usize::MAX).unwrap();
    let present: BTreeSet<u64> = records.iter().map(|r| r.seq).collect();

    // Durable commits are all there.
    for seq in &seen.durable {
        assert!(
            removable(*seq) || present.contains(seq),
            "round {round}: durable record {seq} lost"
        );
    }
    // No seq comes back with other content; the next seq is above all ever seen.
    for r in &records {
        if let Some(before) = seen.records.get(&r.seq) {
            assert_eq!(before, r, "round {round}: seq {} reused", r.seq);
        }
        seen.records.insert(r.seq, r.clone());
    }
    let highest = seen.records.keys().next_back().copied().unwrap_or(0);
    assert!(
        store.next_seq() > highest,
        "round {round}: next seq {} not above {highest}",
        store.next_seq()
    );

    // Memory is the last durable commit or later, and whole.
    let n = counter_of(&memory);
    assert!(
        n >= seen.durable_counter,
        "round {round}: memory at commit {n}, but {} was durable",
        seen.durable_counter
    );
    let olds: Vec<&String> = memory
        .prompts
        .keys()
        .filter(|k| k.starts_with("old"))
        .collect();
    if n > 0 {
        assert_eq!(olds, [&format!("old{n}")], "round {round}: prompt deletes");
        assert_eq!(
            memory.prompts[&format!("old{n}")],
            prompt(&format!("old{n}"), n)
        );
    } else {
        assert!(olds.is_empty());
    }
    // Atomicity: the records of commit n are all there (bar removed ones), none of a later one.
    let mut by_commit: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for r in &records {
        let (c, j) = decode(r);
        by_commit.entry(c).or_default().push(j);
    }
    if let Some((latest, _)) = by_commit.iter().next_back() {
        assert_eq!(
            *latest, n,
            "round {round}: outbox has commit {latest}, memory {n}"
        );
    }
    if n > 0 {
        let last_seqs: Vec<u64> = records
            .iter()
            .filter(|r| decode(r).0 == n)
            .map(|r| r.seq)
            .collect();
        let expected = last_seqs
            .first()
            .map(|first| (*first..first + RECORDS_PER_COMMIT).filter(|s| !removable(*s)));
        if let Some(expected) = expected {
            let expected: Vec<u64> = expected.collect();
            let got: Vec<u64> = last_seqs.into_iter().filter(|s| !removable(*s)).collect();
            assert_eq!(got, expected, "round {round}: commit {n} partly on disk");
        }
    }
}

#[test]
fn kill_9_loses_no_durable_commit() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let mut rng = Rng(seed);
    let mut seen = Seen::default();
    let started = Instant::now();
    let kills = std::env::var("STORE_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(KILLS);
    let mut killed_while_committing = 0;
    for round in 0..kills {
        let lines = run_and_kill(dir.path(), &mut rng);
        for line in &lines {
            let mut words = line.split(' ');
            if words.next() == Some("committed") {
                let n: u64 = words.next().unwrap().parse().unwrap();
                let last: u64 = words.next().unwrap().parse().unwrap();
                seen.durable_counter = seen.durable_counter.max(n);
                seen.durable.extend(last + 1 - RECORDS_PER_COMMIT..=last);
            }
        }
        if lines.iter().any(|l| l.starts_with("committed")) {
            killed_while_committing += 1;
        }
        check(dir.path(), &mut seen, round);
    }
    println!(
        "{kills} kills in {:?}: {killed_while_committing} after durable commits, {} durable \
         commits, {} records seen",
        started.elapsed(),
        seen.durable_counter / 3,
        seen.records.len()
    );
    assert!(
        killed_while_committing >= kills / 2,
        "too few kills landed while committing ({killed_while_committing}/{kills})"
    );
}
