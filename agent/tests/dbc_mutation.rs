//! Mutated DBC text must never panic the DBC loader: `check-config` and the agent read
//! operator-supplied files, and the release build aborts on panic. The seed is the agent's
//! own `fixtures/passenger.dbc`; mutations are byte flips, DBC-token insertions, truncations
//! and duplicated or dropped lines, each parsed and (when it parses) checked and compiled
//! against the fixture's signals, as `check-config` does. Complements the `dbc_parse` fuzz
//! target, which needs nightly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use proptest::prelude::*;
use rapport_agent::proto::dbc::{DbcFile, WantedSignal};

fn fixture() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/passenger.dbc");
    std::fs::read_to_string(path).unwrap()
}

/// Fragments that steer the parser into its number, multiplexer and attribute paths.
const TOKENS: &[&str] = &[
    " ",
    "\n",
    ":",
    "|",
    "@",
    "@0+",
    "@1-",
    "(",
    ")",
    "[",
    "]",
    ",",
    ";",
    "\"",
    "\\",
    "-",
    "+",
    "M",
    "m",
    "m0M",
    "m65535",
    "0",
    "1",
    "-1",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "1e308",
    "1e309",
    "nan",
    "inf",
    "0x1F",
    "2147483648",
    "65",
    "64",
    "511",
    "512",
    "BO_ ",
    "SG_ ",
    "VAL_ ",
    "CM_ ",
    "BA_DEF_ ",
    "BA_ ",
    "BA_DEF_DEF_ ",
    "SG_MUL_VAL_ ",
    "SIG_VALTYPE_ ",
    "EV_ ",
    "BO_TX_BU_ ",
    "VAL_TABLE_ ",
    "SIG_GROUP_ ",
    "NS_ :",
    "BU_:",
    "INT ",
    "HEX ",
    "FLOAT ",
    "STRING ",
    "ENUM ",
    "Vector__XXX",
    "\u{e9}",
    "\u{0}",
    "\r\n",
    "//",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the byte at this position (modulo length) with this byte.
    Flip(usize, u8),
    /// Insert a token at this position.
    Insert(usize, usize),
    /// Keep only the first bytes.
    Truncate(usize),
    /// Repeat a line right after itself.
    DuplicateLine(usize),
    /// Remove a line.
    DropLine(usize),
    /// Swap two lines.
    SwapLines(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(i, t)| Mutation::Insert(i, t)),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        any::<usize>().prop_map(Mutation::DropLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len().max(1);
    match *m {
        Mutation::Flip(i, b) => {
            if let Some(x) = bytes.get_mut(i % len) {
                *x = b;
            }
        }
        Mutation::Insert(i, t) => {
            let at = i % (bytes.len() + 1);
            bytes.splice(at..at, TOKENS[t].bytes());
        }
        Mutation::Truncate(i) => bytes.truncate(i % len),
        Mutation::DuplicateLine(i) | Mutation::DropLine(i) | Mutation::SwapLines(i, _) => {
            let mut lines: Vec<Vec<u8>> =
                bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
            let n = lines.len();
            let i = i % n;
            match *m {
                Mutation::DuplicateLine(_) => lines.insert(i, lines[i].clone()),
                Mutation::DropLine(_) => {
                    lines.remove(i);
                }
                Mutation::SwapLines(_, j) => lines.swap(i, j % n),
                _ => unreachable!(),
            }
            *bytes = lines.join(&b'\n');
        }
    }
}

fn wanted() -> Vec<WantedSignal> {
    [
        ("CLUSTER_1", "Odometer"),
        ("CLUSTER_1", "GearLever"),
        ("CLUSTER_1", "VehicleSpeed"),
        ("BODY_STATUS", "Page"),
        ("BODY_STATUS", "FuelLevel"),
        ("BODY_STATUS", "OutsideTemp"),
    ]
    .iter()
    .map(|(m, s)| WantedSignal::by_name(m, s))
    .collect()
}

/// Parses, checks and compiles; a panic anywhere fails the test with the input shown.
fn load(bytes: &[u8]) {
    if let Ok(file) = DbcFile::from_bytes("mutated.dbc", bytes) {
        let wanted = wanted();
        let _ = file.check(&wanted);
        if let Ok(plan) = file.compile(&wanted) {
            for id in plan.can_ids().collect::<Vec<_>>() {
                for _ in plan.decode_raw(id.0, id.1, &[0xA5; 8]) {}
            }
        }
    }
}

#[test]
fn the_fixture_itself_loads() {
    let file = DbcFile::parse("passenger.dbc", &fixture()).unwrap();
    assert_eq!(file.message_count(), 2);
    assert!(file.check(&wanted()).is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("DBC_MUTATION_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_fixture_never_panics(mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut bytes = fixture().into_bytes();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        load(&bytes);
    }
}
