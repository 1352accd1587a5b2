//! The `[uds]` section as a list of ECUs: its serde shape (a lone `[uds]` table, as configs
//! written before several ECUs were possible have it, or an `[[uds]]` array of tables, one per
//! ECU), ISO 15765-2 addressing, and the checks only the whole list knows — names required
//! and unique when there are several, no two ECUs on one bus sharing CAN ids, each ECU's bus
//! one of `[[can.buses]]`.
//!
//! Owns: that shape and those checks. Does not own: one ECU's own fields and checks
//! ([`super::Uds`], in `car`), nor what the poller does with them.

use core::fmt;

use rapport_kit::config::{Problems, index, key};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{Can, Uds};

/// ISO 15765-2 addressing format of one UDS ECU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Addressing {
    /// Normal addressing: the CAN ids alone name the ECU; every data byte is ISO-TP's.
    #[default]
    Normal,
    /// Extended addressing: the first data byte of each frame is the target address
    /// (`target_address` on our requests, `source_address` on the ECU's answers), so several
    /// ECUs can share one pair of CAN ids (common behind gateways).
    Extended,
}

/// The tester's address when `source_address` is not given (ISO 15765-4's off-board tester).
pub const DEFAULT_SOURCE_ADDRESS: u8 = 0xF1;

impl Uds {
    /// The ECU's name for logs: its `name`, else `uds[i]`.
    pub(crate) fn label(&self, i: usize) -> String {
        self.name.clone().unwrap_or_else(|| format!("uds[{i}]"))
    }

    /// With extended addressing, (target address, source address): the first data byte of our
    /// requests, and of its answers. `None`: normal addressing.
    pub(crate) fn address_bytes(&self) -> Option<(u8, u8)> {
        match self.addressing {
            Addressing::Normal => None,
            Addressing::Extended => Some((
                self.target_address.unwrap_or(0),
                self.source_address.unwrap_or(DEFAULT_SOURCE_ADDRESS),
            )),
        }
    }
}

/// Reads `uds` as one table or an array of tables. A lone table's own errors (a missing
/// `bus`, an unknown key) are reported as they are, not as "matched no variant".
pub(super) fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Uds>, D::Error> {
    struct OneOrMany;
    impl<'de> Visitor<'de> for OneOrMany {
        type Value = Vec<Uds>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a [uds] table or [[uds]] tables, one per ECU")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<Uds>, A::Error> {
            Uds::deserialize(de::value::MapAccessDeserializer::new(map)).map(|u| vec![u])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<Uds>, A::Error> {
            Vec::<Uds>::deserialize(de::value::SeqAccessDeserializer::new(seq))
        }
    }
    d.deserialize_any(OneOrMany)
}

/// Every UDS ECU's check, at `uds` for a lone one and `uds[i]` when there are several, and
/// what only the list knows.
pub(super) fn check_all(ecus: &[Uds], can: &Can, path: &str, problems: &mut Problems) {
    let base = key(path, "uds");
    let at = |i: usize| {
        if ecus.len() == 1 {
            base.clone()
        } else {
            index(&base, i)
        }
    };
    for (i, ecu) in ecus.iter().enumerate() {
        let here = at(i);
        can.check_bus_ref(&here, &ecu.bus, problems);
        problems.check(&here, ecu);
        check_addressing(ecu, &here, problems);
        if ecus.len() > 1 {
            match ecu.name.as_deref().map(str::trim) {
                None | Some("") => problems.at(
                    &here,
                    "name",
                    "required when there are several [[uds]] ECUs",
                ),
                Some(name) => {
                    if ecus
                        .iter()
                        .take(i)
                        .any(|o| o.name.as_deref().map(str::trim) == Some(name))
                    {
                        problems.at(
                            &here,
                            "name",
                            format!("{name:?} is used by an earlier [[uds]] ECU"),
                        );
                    }
                }
            }
        }
        // Two ECUs on one bus answering on one id (and, with extended addressing, to one
        // address) cannot be told apart.
        for (j, other) in ecus.iter().enumerate().take(i) {
            if other.bus != ecu.bus || other.is_extended() != ecu.is_extended() {
                continue;
            }
            let distinct_addresses = matches!(
                (ecu.address_bytes(), other.address_bytes()),
                (Some((a, _)), Some((b, _))) if a != b
            );
            if distinct_addresses {
                continue;
            }
            for (field, id, theirs) in [
                ("request_id", ecu.request_id, other.request_id),
                ("response_id", ecu.response_id, other.response_id),
            ] {
                if id == theirs {
                    problems.at(
                        &here,
                        field,
                        format!(
                            "0x{id:X} is also {} on bus {:?}",
                            key(&at(j), field),
                            ecu.bus
                        ),
                    );
                }
            }
        }
    }
}

fn check_addressing(ecu: &Uds, path: &str, problems: &mut Problems) {
    match ecu.addressing {
        Addressing::Normal => {
            for (field, value) in [
                ("target_address", ecu.target_address),
                ("source_address", ecu.source_address),
            ] {
                if value.is_some() {
                    problems.at(path, field, "only with addressing = \"extended\"");
                }
            }
        }
        Addressing::Extended => {
            if ecu.target_address.is_none() {
                problems.at(
                    path,
                    "target_address",
                    "required with addressing = \"extended\" (the ECU's address byte)",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::Config;
    use rapport_kit::config::Check;

    const HEAD: &str = r#"
[vehicle]
vin = "WVWZZZ1JZXW000001"
line = "test"
category = "passenger"
delivered = 2024-01-01
[[can.buses]]
name = "powertrain"
interface = "can0"
[[can.buses]]
name = "body"
interface = "can1"
"#;

    fn problems(body: &str) -> Vec<String> {
        match Config::from_toml("t.toml", &format!("{HEAD}{body}")) {
            Ok(c) => c.problems("").iter().map(ToString::to_string).collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    #[test]
    fn a_lone_table_is_one_ecu() {
        let c = Config::from_toml(
            "t.toml",
            &format!("{HEAD}[uds]\nbus = \"body\"\nrequest_id = 0x714\nresponse_id = 0x77E\n"),
        )
        .unwrap();
        assert_eq!(c.uds.len(), 1);
        assert_eq!(c.uds[0].response_id, 0x77E);
        assert_eq!(c.uds[0].address_bytes(), None);
    }

    #[test]
    fn an_array_is_several_ecus_with_their_own_dids_and_addressing() {
        let c = Config::from_toml(
            "t.toml",
            &format!(
                "{HEAD}
[[uds]]
name = \"cluster\"
bus = \"powertrain\"
request_id = 0x714
response_id = 0x77E
[[uds.dids]]
did = 0xF1A0
len = 3
kind = \"unsigned_be\"
role = \"odometer\"
[[uds]]
name = \"door\"
bus = \"body\"
request_id = 0x6F1
response_id = 0x640
addressing = \"extended\"
target_address = 0x40
"
            ),
        )
        .unwrap();
        assert_eq!(c.uds.len(), 2);
        assert_eq!(c.uds[0].dids.len(), 1);
        assert!(c.uds[1].dids.is_empty());
        assert_eq!(c.uds[1].address_bytes(), Some((0x40, 0xF1)));
    }

    #[test]
    fn a_lone_tables_own_error_is_named() {
        let got = problems("[uds]\nbus = \"body\"\nrequest_id = 0x714\nresponse = 1\n");
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].contains("unknown field `response`"), "{got:?}");
    }

    #[test]
    fn several_ecus_are_checked_each_and_together() {
        let got = problems(
            r#"
[[uds]]
name = "a"
bus = "powertrain"
request_id = 0x714
response_id = 0x77E
[[uds]]
bus = "powertrain"
request_id = 0x714
response_id = 0x77F
[[uds]]
name = "a"
bus = "chassis"
request_id = 0x800
response_id = 0x77E
addressing = "extended"
[[uds]]
name = "b"
bus = "body"
request_id = 0x714
response_id = 0x77E
target_address = 0x10
"#,
        );
        let expect = [
            "uds[1].name: required when there are several [[uds]] ECUs",
            "uds[1].request_id: 0x714 is also uds[0].request_id on bus \"powertrain\"",
            "uds[2].bus: no [[can.buses]] is named \"chassis\" (known: [\"powertrain\", \"body\"])",
            "uds[2].target_address: required with addressing = \"extended\" (the ECU's address byte)",
            "uds[2].name: \"a\" is used by an earlier [[uds]] ECU",
            "uds[3].target_address: only with addressing = \"extended\"",
        ];
        for e in expect {
            assert!(
                got.iter().any(|g| g.contains(e)),
                "missing {e:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), expect.len(), "{got:#?}");
    }

    #[test]
    fn one_pair_of_ids_serves_ecus_with_distinct_target_addresses() {
        let got = problems(
            r#"
[[uds]]
name = "a"
bus = "body"
request_id = 0x6F1
response_id = 0x640
addressing = "extended"
target_address = 0x40
[[uds]]
name = "b"
bus = "body"
request_id = 0x6F1
response_id = 0x640
addressing = "extended"
target_address = 0x41
"#,
        );
        assert!(got.is_empty(), "{got:?}");
    }
}
