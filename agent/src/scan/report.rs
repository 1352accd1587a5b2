//! What a scan prints and writes: the table of ECUs ([`table`]) and the config skeleton
//! ([`config_skeleton`]) that `rapport-agent check-config` accepts, with comments saying what
//! was found where. Pure text out of [`Findings`]; no I/O.
//!
//! Does not own: the scan ([`super::Scanner`]) nor the config's shape ([`crate::config`]), which
//! the skeleton follows and the tests check it against.

use std::fmt::Write as _;

use super::{DidAnswer, Findings, Status, UdsEcu};
use crate::proto::obd::pid_data_len;

/// A placeholder VIN for a skeleton when no ECU gave one: valid, so the file loads, and
/// obviously not a real one (the comment above it says to replace it).
const PLACEHOLDER_VIN: &str = "00000000000000000";

/// Where the scan ran, for the skeleton's comments and bus section.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The CAN interface scanned (the bus's `interface`, and its `name`).
    pub interface: &'a str,
    /// Today's date, `YYYY-MM-DD` (a placeholder for `delivered`).
    pub today: &'a str,
}

fn did_name(did: u16) -> &'static str {
    match did {
        0xF190 => "VIN",
        0xF18C => "ECU serial number",
        0xF187 => "spare part number",
        0xF191 => "hardware number",
        0xF195 => "software version",
        0xF4A6 => "odometer (OBD-II PID 0xA6 via UDS)",
        0xF1A0 => "odometer candidate (maker-specific)",
        _ => "",
    }
}

fn nrc_text(nrc: u8) -> String {
    let name = crate::proto::uds::Nrc(nrc).name().unwrap_or("unknown NRC");
    format!("refused, NRC 0x{nrc:02X} {name}")
}

fn hex_list(pids: &[u8]) -> String {
    pids.iter()
        .map(|p| format!("0x{p:02X}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Printable text of a DID answer's bytes: ASCII when it is, else hex.
fn did_value(bytes: &[u8]) -> String {
    let text = bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ');
    if text && !bytes.is_empty() {
        format!("\"{}\"", String::from_utf8_lossy(bytes).trim_end())
    } else {
        bytes.iter().map(|b| format!("{b:02X}")).collect::<String>()
    }
}

/// The table printed after a scan: one line per ECU (protocol, ids, what it supports), then
/// the J1939 sources and broadcast ids, and the scan's status.
pub fn table(findings: &Findings, status: &Status) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{:<10} {:<8} {:<24} supports", "ECU", "protocol", "ids");
    for e in findings.obd.values() {
        let bits = if e.extended { "OBD-II/29" } else { "OBD-II" };
        let _ = writeln!(
            s,
            "{:<10} {:<8} {:<24} mode 01 PIDs {}{}",
            format!("0x{:X}", e.response_id),
            bits,
            format!("0x{:X} -> 0x{:X}", e.request_id, e.response_id),
            hex_list(&e.pids()),
            e.vin
                .as_ref()
                .map(|v| format!("; VIN {v}"))
                .unwrap_or_default()
        );
    }
    for e in &findings.uds {
        let dids: Vec<String> = e
            .dids
            .iter()
            .map(|(did, a)| match a {
                DidAnswer::Data(b) => format!("{did:04X}={}", did_value(b)),
                DidAnswer::Refused(nrc) => format!("{did:04X} refused (NRC 0x{nrc:02X})"),
                DidAnswer::Silent => format!("{did:04X} no answer"),
                DidAnswer::Unexpected(_) => format!("{did:04X} unexpected answer"),
            })
            .collect();
        let _ = writeln!(
            s,
            "{:<10} {:<8} {:<24} TesterPresent {}; {}",
            format!("0x{:X}", e.request_id),
            "UDS",
            format!("0x{:X} -> 0x{:X}", e.request_id, e.response_id),
            if e.tester_present { "ok" } else { "refused" },
            if dids.is_empty() {
                "no DID asked".to_owned()
            } else {
                dids.join(", ")
            }
        );
    }
    for (sa, pgns) in &findings.j1939 {
        let list: Vec<String> = pgns.iter().map(u32::to_string).collect();
        let _ = writeln!(
            s,
            "{:<10} {:<8} {:<24} PGNs {}",
            format!("SA 0x{sa:02X}"),
            "J1939",
            "broadcast",
            list.join(", ")
        );
    }
    if !findings.broadcast.is_empty() {
        // A UDS ECU's answers on a non-OBD id were counted before it was known to be one.
        let ids: Vec<String> = findings
            .broadcast
            .iter()
            .filter(|(id, _)| !findings.uds.iter().any(|e| e.response_id == **id))
            .map(|(id, n)| format!("0x{id:03X} ({n})"))
            .collect();
        let _ = writeln!(s, "broadcast 11-bit ids (frames): {}", ids.join(", "));
    }
    let _ = writeln!(
        s,
        "{} request(s) sent, {} transport error(s)",
        findings.requests, findings.transport_errors
    );
    if !findings.watched_speed() {
        let _ = writeln!(
            s,
            "WARNING: no speed signal found (no OBD-II PID 0x0D, no J1939 CCVS1/TCO1): the scan could not watch for motion"
        );
    }
    match status {
        Status::Done => {
            let _ = writeln!(s, "scan complete");
        }
        Status::Running => {
            let _ = writeln!(s, "scan did not finish in time: the findings are partial");
        }
        Status::Stopped(reason) => {
            let _ = writeln!(s, "STOPPED: {reason}; the findings are partial");
        }
    }
    s
}

/// A config skeleton from the findings, for `check-config` to accept and an engineer to finish:
/// `[vehicle]` (the VIN found, or a placeholder), one `[[can.buses]]`, `[obd]` with the
/// decodable PIDs found, UDS ECUs that read a DID, `[j1939]` if sources were heard. Every
/// section says in a comment what it came from.
pub fn config_skeleton(findings: &Findings, status: &Status, ctx: &Context<'_>) -> String {
    let mut s = String::new();
    let bus = ctx.interface;
    let _ = writeln!(
        s,
        "# Written by `rapport-agent scan` on {} from {}: a skeleton to finish by hand.",
        ctx.today, bus
    );
    if let Status::Stopped(reason) = status {
        let _ = writeln!(s, "# PARTIAL: {reason}.");
    }
    let _ = writeln!(
        s,
        "# Check it with: rapport-agent check-config --config <this file>\n"
    );
    let _ = writeln!(s, "[vehicle]");
    match &findings.vin {
        Some(vin) => {
            let _ = writeln!(s, "vin = \"{vin}\"      # from OBD-II mode 09 PID 02");
        }
        None => {
            let _ = writeln!(
                s,
                "# No ECU gave a VIN: replace this placeholder with the car's VIN.\nvin = \"{PLACEHOLDER_VIN}\""
            );
        }
    }
    let category = if findings.obd.is_empty() && !findings.j1939.is_empty() {
        "commercial"
    } else {
        "passenger"
    };
    let _ = writeln!(
        s,
        "line = \"new-vehicle-line\"  # the vehicle line (model family): name it\ncategory = \"{category}\"\ndelivered = \"{}\"  # the scan date: replace with the delivery date\n",
        ctx.today
    );
    let _ = writeln!(
        s,
        "[[can.buses]]\nname = \"{bus}\"\ninterface = \"{bus}\"\nfd = false\n"
    );
    write_obd(&mut s, findings, bus);
    write_uds(&mut s, &findings.uds, bus);
    if !findings.j1939.is_empty() {
        let _ = writeln!(s, "# J1939 sources heard (source address: PGNs):");
        for (sa, pgns) in &findings.j1939 {
            let list: Vec<String> = pgns.iter().map(u32::to_string).collect();
            let _ = writeln!(s, "#   0x{sa:02X}: {}", list.join(", "));
        }
        let _ = writeln!(s, "[j1939]\nbus = \"{bus}\"\nown_address = 0xF9\n");
    }
    s
}

fn write_obd(s: &mut String, findings: &Findings, bus: &str) {
    if findings.obd.is_empty() {
        let _ = writeln!(
            s,
            "# No ECU answered OBD-II (0x7DF, 0x7E0-0x7E7, 0x18DB33F1).\n"
        );
        return;
    }
    let _ = writeln!(
        s,
        "# OBD-II ECUs found (response id: supported mode 01 PIDs):"
    );
    let mut pids: Vec<u8> = Vec::new();
    for e in findings.obd.values() {
        let _ = writeln!(s, "#   0x{:X}: {}", e.response_id, hex_list(&e.pids()));
        pids.extend(e.pids());
    }
    pids.sort_unstable();
    pids.dedup();
    // Only PIDs the agent can decode: the others' answers could not be read.
    pids.retain(|p| pid_data_len(*p).is_some());
    let bits = if findings.obd_extended() { 29 } else { 11 };
    let _ = writeln!(
        s,
        "[obd]\nbus = \"{bus}\"\nid_bits = {bits}\npids = [{}]  # supported by some ECU and decodable\ndtcs = true\n",
        hex_list(&pids)
    );
}

/// The UDS ECUs: every ECU that read a DID asked becomes its own `[[uds]]` table with a `name`
/// (`ecu_<request id>`), the rest stay comments.
fn write_uds(s: &mut String, ecus: &[UdsEcu], bus: &str) {
    if ecus.is_empty() {
        let _ = writeln!(
            s,
            "# No ECU answered UDS TesterPresent on the ids probed.\n"
        );
        return;
    }
    let _ = writeln!(s, "# UDS ECUs found (request -> response: DIDs asked):");
    for e in ecus {
        let _ = writeln!(s, "#   0x{:X} -> 0x{:X}:", e.request_id, e.response_id);
        for (did, a) in &e.dids {
            let what = match a {
                DidAnswer::Data(b) => format!("{} byte(s) {}", b.len(), did_value(b)),
                DidAnswer::Refused(nrc) => nrc_text(*nrc),
                DidAnswer::Silent => "no answer".into(),
                DidAnswer::Unexpected(b) => format!("unexpected answer {}", did_value(b)),
            };
            let _ = writeln!(s, "#     0x{did:04X} {}: {what}", did_name(*did));
        }
    }
    let mut written = 0;
    for e in ecus.iter().filter(|e| e.supported().next().is_some()) {
        written += 1;
        let _ = writeln!(s, "[[uds]]\nname = \"ecu_{:x}\"", e.request_id);
        let _ = writeln!(
            s,
            "bus = \"{bus}\"\nrequest_id = 0x{:X}\nresponse_id = 0x{:X}\n",
            e.request_id, e.response_id
        );
        write_odometer_did(s, e);
    }
    if written == 0 {
        let _ = writeln!(s, "# (none read any DID asked: no [[uds]] table written)\n");
    }
}

/// The odometer DID, if the ECU read one: F4A6 (standard) before F1A0 (a candidate). The
/// identification DIDs stay comments: polling them every round would only load the bus.
fn write_odometer_did(s: &mut String, e: &UdsEcu) {
    let found = |d: u16| e.supported().find(|(did, _)| *did == d);
    let (did, bytes, comment) = if let Some((d, b)) = found(0xF4A6) {
        (d, b, "OBD-II PID 0xA6 through UDS: 0.1 km")
    } else if let Some((d, b)) = found(0xF1A0) {
        (
            d,
            b,
            "a maker-specific DID: 0.1 km is a guess, check it against the dashboard",
        )
    } else {
        let _ = writeln!(s, "# (no odometer DID found: add the DIDs to read here)\n");
        return;
    };
    if !(1..=8).contains(&bytes.len()) {
        let _ = writeln!(
            s,
            "# (0x{did:04X} answered {} bytes: not a number this config reads)\n",
            bytes.len()
        );
        return;
    }
    let _ = writeln!(
        s,
        "# {comment}; it read {} now.\n[[uds.dids]]\ndid = 0x{did:04X}\nname = \"odometer\"\nlen = {}\nkind = \"unsigned_be\"\nfactor = 0.1\nunit = \"km\"\nrole = \"odometer\"\n",
        did_value(bytes),
        bytes.len()
    );
}
