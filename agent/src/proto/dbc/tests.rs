//! Decode tests on real DBC files (read from `../shared/data`, never copied), the project's
//! own fixture, and small DBCs written inline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;

use super::*;
use crate::can::frame::CanFrame;
use rapport_harness::files::shared_data_file;

fn load_shared(relative: &str) -> Option<DbcFile> {
    let path = shared_data_file(relative)?;
    Some(DbcFile::load(&path).unwrap())
}

/// Decodes one frame and keys the values by signal name; panics on a decode error.
fn decode(plan: &DecodePlan, frame: &CanFrame) -> HashMap<String, SignalValue> {
    plan.decode(frame)
        .map(|r| {
            let v = r.unwrap();
            (plan.signal(v.signal).unwrap().name.to_string(), v)
        })
        .collect()
}

fn std_frame(id: u32, data: &[u8]) -> CanFrame {
    CanFrame::from_raw(id, false, data).unwrap()
}

fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}

fn all_of(message: &str, signals: &[&str]) -> Vec<WantedSignal> {
    signals
        .iter()
        .map(|s| WantedSignal::by_name(message, s))
        .collect()
}

// VECTORS.md §6, cantools tests/test_database.py, motohawk.dbc.
#[test]
fn motohawk_big_endian_signed_scaled() {
    let Some(file) = load_shared("dbc/cantools/motohawk.dbc") else {
        return;
    };
    let plan = file
        .compile(&all_of(
            "ExampleMessage",
            &["Temperature", "AverageRadius", "Enable"],
        ))
        .unwrap();

    // C0: Enable (bit 7) = 1, AverageRadius (bits 6..1) = 0b100000 = 32, Temperature MSB = 0;
    // 06 E0: the rest of Temperature's 12 bits -> 0x037 = 55.
    let v = decode(&plan, &std_frame(496, &[0xC0, 0x06, 0xE0, 0, 0, 0, 0, 0]));
    assert_close(v["Temperature"].value, 250.55);
    assert_close(v["AverageRadius"].value, 3.2);
    assert_close(v["Enable"].value, 1.0);
    // The "scaling off" row: raw values.
    assert_eq!(v["Temperature"].raw, RawValue::Signed(55));
    assert_eq!(v["AverageRadius"].raw, RawValue::Unsigned(32));
    assert!(!v["Temperature"].out_of_range && !v["AverageRadius"].out_of_range);

    // 01 00 20: Temperature 0b1000_0000_0001 = -2047 -> 229.53; the rest 0.
    let v = decode(&plan, &std_frame(496, &[0x01, 0x00, 0x20, 0, 0, 0, 0, 0]));
    assert_eq!(v["Temperature"].raw, RawValue::Signed(-2047));
    assert_close(v["Temperature"].value, 229.53);
    assert_close(v["AverageRadius"].value, 0.0);
    assert_close(v["Enable"].value, 0.0);
}

#[test]
fn out_of_range_is_flagged_not_dropped() {
    let Some(file) = load_shared("dbc/cantools/motohawk.dbc") else {
        return;
    };
    let plan = file
        .compile(&all_of("ExampleMessage", &["AverageRadius", "Enable"]))
        .unwrap();
    // F8: Enable = 1, AverageRadius = 0b111100 = 60 -> 6.0 m, above its [0|5].
    let v = decode(&plan, &std_frame(496, &[0xF8, 0, 0, 0, 0, 0, 0, 0]));
    assert_close(v["AverageRadius"].value, 6.0);
    assert!(v["AverageRadius"].out_of_range);
    // Enable's range is [0|0]: no range given, nothing flagged.
    assert_close(v["Enable"].value, 1.0);
    assert!(!v["Enable"].out_of_range);
}

// VECTORS.md §6, cantools, signed.dbc.
#[test]
fn signed_dbc_rows() {
    let Some(file) = load_shared("dbc/cantools/signed.dbc") else {
        return;
    };
    let rows: [(&str, &str, u32, [u8; 8]); 6] = [
        (
            "Message64",
            "s64",
            2,
            [0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        ),
        // s33 is 33 bits: byte 4 bit 0 is its sign bit.
        (
            "Message33",
            "s33",
            1,
            [0xFB, 0xFF, 0xFF, 0xFF, 0x01, 0, 0, 0],
        ),
        ("Message32", "s32", 0, [0xFB, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]),
        (
            "Message64big",
            "s64big",
            3,
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFB],
        ),
        // 7|33@0: 32 bits of bytes 0..3 then the top bit of byte 4.
        (
            "Message33big",
            "s33big",
            4,
            [0xFF, 0xFF, 0xFF, 0xFD, 0x80, 0, 0, 0],
        ),
        (
            "Message32big",
            "s32big",
            5,
            [0xFF, 0xFF, 0xFF, 0xFB, 0, 0, 0, 0],
        ),
    ];
    for (message, signal, id, data) in rows {
        let plan = file
            .compile(&[WantedSignal::by_name(message, signal)])
            .unwrap();
        let v = decode(&plan, &std_frame(id, &data));
        assert_eq!(v[signal].raw, RawValue::Signed(-5), "{message}.{signal}");
        assert_close(v[signal].value, -5.0);
        assert!(!v[signal].out_of_range, "{message}.{signal}");
    }

    // Message378910: Intel and Motorola signals of odd lengths interleaved.
    let names = ["s7", "s8big", "s9", "s8", "s3big", "s3", "s10big", "s7big"];
    let plan = file.compile(&all_of("Message378910", &names)).unwrap();
    let v = decode(
        &plan,
        &std_frame(10, &[0xB0, 0xB4, 0x4A, 0x55, 0x87, 0x01, 0x81, 0xF7]),
    );
    let expected = [-40, 90, 165, -43, -4, 1, -253, -9];
    for (name, want) in names.iter().zip(expected) {
        assert_eq!(v[*name].raw, RawValue::Signed(want), "{name}");
    }
}

/// The multiplex layout of VECTORS.md §6 (cantools multiplex.dbc), written out minimally:
/// extended id 0x123456, a 6-bit multiplexor at bit 2, one-bit signals selected by it.
fn multiplex_dbc(with_mul_val: bool) -> String {
    let mut dbc = String::from(
        r#"VERSION ""

BS_:

BU_:

BO_ 2148676694 Message1: 8 Vector__XXX
 SG_ BIT_F m24 : 39|1@1+ (1,0) [0|0] "" Vector__XXX
 SG_ BIT_H m24 : 38|1@1+ (1,0) [0|0] "" Vector__XXX
 SG_ BIT_B m24 : 33|1@1+ (1,0) [0|0] "" Vector__XXX
 SG_ BIT_D m24 : 32|1@1+ (1,0) [0|0] "" Vector__XXX
 SG_ BIT_E m24 : 29|1@1+ (1,0) [0|0] "" Vector__XXX
 SG_ BIT_K m24 : 28|1@1+ (1,0) [0|0] "" Vector__XXX
 SG_ BIT_A m24 : 26|1@1+ (1,0) [0|0] "" Vector__XXX
 SG_ BIT_L m8 : 24|1@1+ (1,0) [0|0] "" Vector__XXX
 SG_ BIT_G m8 : 23|1@1+ (1,0) [0|0] "" Vector__XXX
 SG_ BIT_C m8 : 19|1@1+ (1,0) [0|0] "" Vector__XXX
 SG_ BIT_J m8 : 18|1@1+ (1,0) [0|0] "" Vector__XXX
 SG_ Multiplexor M : 2|6@1+ (1,0) [0|0] "" Vector__XXX

"#,
    );
    if with_mul_val {
        for bit in ["J", "C", "G", "L"] {
            dbc.push_str(&format!(
                "SG_MUL_VAL_ 2148676694 BIT_{bit} Multiplexor 8-8, 16-16, 24-24;\n"
            ));
        }
        for bit in ["A", "K", "E", "D", "B", "H", "F"] {
            dbc.push_str(&format!(
                "SG_MUL_VAL_ 2148676694 BIT_{bit} Multiplexor 24-24;\n"
            ));
        }
    }
    dbc
}

const MUX_SIGNALS: [&str; 12] = [
    "Multiplexor",
    "BIT_A",
    "BIT_B",
    "BIT_C",
    "BIT_D",
    "BIT_E",
    "BIT_F",
    "BIT_G",
    "BIT_H",
    "BIT_J",
    "BIT_K",
    "BIT_L",
];

fn present(v: &HashMap<String, SignalValue>) -> Vec<String> {
    let mut names: Vec<String> = v
        .keys()
        .filter(|k| k.starts_with("BIT_"))
        .cloned()
        .collect();
    names.sort();
    names
}

// VECTORS.md §6, cantools multiplex.dbc rows; the SG_MUL_VAL_ lines make BIT_C/G/J/L
// present for multiplexor 8, 16 and 24.
#[test]
fn extended_multiplexing_rows() {
    let file = DbcFile::parse("multiplex.dbc", &multiplex_dbc(true)).unwrap();
    let plan = file.compile(&all_of("Message1", &MUX_SIGNALS)).unwrap();
    let frame = |data: &[u8]| CanFrame::from_raw(0x12_3456, true, data).unwrap();

    // 20: multiplexor (bits 2..7) = 8; 8C: bits 18, 19, 23; 01: bit 24.
    let v = decode(&plan, &frame(&[0x20, 0x00, 0x8C, 0x01, 0, 0, 0, 0]));
    assert_eq!(v["Multiplexor"].raw, RawValue::Unsigned(8));
    assert_eq!(present(&v), ["BIT_C", "BIT_G", "BIT_J", "BIT_L"]);
    assert!(v.values().all(|s| s.value >= 1.0));

    // 40: multiplexor 16, same bits.
    let v = decode(&plan, &frame(&[0x40, 0x00, 0x8C, 0x01, 0, 0, 0, 0]));
    assert_eq!(v["Multiplexor"].raw, RawValue::Unsigned(16));
    assert_eq!(present(&v), ["BIT_C", "BIT_G", "BIT_J", "BIT_L"]);

    // 60: multiplexor 24; 35 C3 set bits 24, 26, 28, 29, 32, 33, 38, 39: all twelve bits 1.
    let v = decode(&plan, &frame(&[0x60, 0x00, 0x8C, 0x35, 0xC3, 0, 0, 0]));
    assert_eq!(v["Multiplexor"].raw, RawValue::Unsigned(24));
    assert_eq!(present(&v).len(), 11);
    for (name, s) in &v {
        if name.starts_with("BIT_") {
            assert_eq!(s.raw, RawValue::Unsigned(1), "{name}");
        }
    }

    // The DBC id has bit 31 set: a standard frame (or another id) is not this message.
    assert_eq!(plan.decode_raw(0x456, false, &[0x20; 8]).count(), 0);
    assert_eq!(plan.can_ids().collect::<Vec<_>>(), [(0x12_3456, true)]);
}

#[test]
fn simple_multiplexing_without_mul_val() {
    let file = DbcFile::parse("multiplex.dbc", &multiplex_dbc(false)).unwrap();
    let plan = file.compile(&all_of("Message1", &MUX_SIGNALS)).unwrap();
    let frame = |data: &[u8]| CanFrame::from_raw(0x12_3456, true, data).unwrap();
    let all_ones = [0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0];

    let mut data = all_ones;
    data[0] = 8 << 2;
    assert_eq!(
        present(&decode(&plan, &frame(&data))),
        ["BIT_C", "BIT_G", "BIT_J", "BIT_L"]
    );
    // m8 means exactly 8: 16 selects nothing.
    data[0] = 16 << 2;
    assert!(present(&decode(&plan, &frame(&data))).is_empty());
    data[0] = 24 << 2;
    assert_eq!(
        present(&decode(&plan, &frame(&data))),
        [
            "BIT_A", "BIT_B", "BIT_D", "BIT_E", "BIT_F", "BIT_H", "BIT_K"
        ]
    );
}

// SOURCES.md: kuksa-can-provider's Model3CAN.dbc, a production car's community DBC.
#[test]
fn model3_odometer_and_speed() {
    let Some(file) = load_shared("dbc/kuksa/Model3CAN.dbc") else {
        return;
    };
    assert_eq!(file.message_count(), 159);
    let plan = file
        .compile(&[
            WantedSignal::by_id(1011, "UI_odometer"),
            WantedSignal::by_name("ID3D9UI_gpsVehicleSpeed", "UI_gpsVehicleSpeed"),
        ])
        .unwrap();
    let odo = &plan.signals()[0];
    assert_eq!(
        (odo.can_id, odo.extended, odo.unit.as_str()),
        (0x3F3, false, "km")
    );

    // UI_odometer 0|24@1+ (0.1,0): 123456.7 km = raw 1234567 = 0x12D687, LSB first.
    let v = decode(&plan, &std_frame(0x3F3, &[0x87, 0xD6, 0x12]));
    assert_eq!(v["UI_odometer"].raw, RawValue::Unsigned(1_234_567));
    assert_close(v["UI_odometer"].value, 123_456.7);
    assert!(!v["UI_odometer"].out_of_range);

    // UI_gpsVehicleSpeed 24|16@1+ (0.00390625,0): bytes 3..4 = 0x3200 = 12800 -> 50 kph.
    let v = decode(
        &plan,
        &std_frame(0x3D9, &[0xFF, 0xFF, 0xFF, 0x00, 0x32, 0xFF, 0xFF, 0xFF]),
    );
    assert_close(v["UI_gpsVehicleSpeed"].value, 50.0);
}

#[test]
fn model3_every_signal_compiles() {
    let Some(file) = load_shared("dbc/kuksa/Model3CAN.dbc") else {
        return;
    };
    let wanted: Vec<WantedSignal> = file
        .dbc()
        .messages
        .iter()
        .flat_map(|m| {
            m.signals
                .iter()
                .map(|s| WantedSignal::by_id(m.id.raw(), &s.name))
        })
        .collect();
    assert!(wanted.len() > 1_000);
    let errors = file.check(&wanted);
    assert!(
        errors.is_empty(),
        "{:?}",
        errors.first().map(ToString::to_string)
    );
}

/// VECTORS.md §7: opendbc's odometer and speed definitions, written out as one small DBC.
const OPENDBC_ODOMETERS: &str = r#"VERSION ""

BS_:

BU_: XXX

BO_ 1456 CLU12: 4 XXX
 SG_ CF_Clu_Odometer : 0|24@1+ (0.1,0) [0|1677721.4] "km" XXX

BO_ 1302 ODOMETER: 8 XXX
 SG_ ODOMETER : 7|24@0+ (1,0) [0|16777215] "km" XXX

BO_ 1714 Diagnose_01: 8 XXX
 SG_ KBI_Kilometerstand : 8|20@1+ (1,0) [0|1045873] "km" XXX

BO_ 1072 Cluster_Info1_FD1: 8 XXX
 SG_ OdometerMasterValue : 15|24@0+ (1,0) [0|16777215] "km" XXX

BO_ 180 SPEED: 8 XXX
 SG_ SPEED : 47|16@0+ (0.01,0) [0|655.35] "km/h" XXX

BO_ 1265 CLU11: 4 XXX
 SG_ CF_Clu_Vanz : 8|9@1+ (0.5,0) [0|255.5] "km/h or MPH" XXX
"#;

#[test]
fn opendbc_odometer_layouts() {
    let file = DbcFile::parse("opendbc-odometers.dbc", OPENDBC_ODOMETERS).unwrap();
    let plan = file
        .compile(&[
            WantedSignal::by_name("CLU12", "CF_Clu_Odometer"),
            WantedSignal::by_name("ODOMETER", "ODOMETER"),
            WantedSignal::by_name("Diagnose_01", "KBI_Kilometerstand"),
            WantedSignal::by_name("Cluster_Info1_FD1", "OdometerMasterValue"),
            WantedSignal::by_name("SPEED", "SPEED"),
            WantedSignal::by_name("CLU11", "CF_Clu_Vanz"),
        ])
        .unwrap();

    // Hyundai 0x5B0: 98765.4 km = 987654 = 0x0F1206, Intel: 06 12 0F; byte 3 is other data.
    let v = decode(&plan, &std_frame(0x5B0, &[0x06, 0x12, 0x0F, 0xFF]));
    assert_close(v["CF_Clu_Odometer"].value, 98_765.4);

    // Honda 0x516: start bit 7 = MSB of byte 0, Motorola: 123456 = 0x01E240 -> 01 E2 40.
    let v = decode(
        &plan,
        &std_frame(0x516, &[0x01, 0xE2, 0x40, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA]),
    );
    assert_eq!(v["ODOMETER"].raw, RawValue::Unsigned(123_456));

    // VW 0x6B2: 20 bits from bit 8: 370085 = 0x5A5A5 -> A5 A5 and the low nibble 5 of
    // byte 3; byte 0 and byte 3's high nibble F are other data and must be masked off.
    let v = decode(
        &plan,
        &std_frame(0x6B2, &[0x11, 0xA5, 0xA5, 0xF5, 0, 0, 0, 0]),
    );
    assert_eq!(v["KBI_Kilometerstand"].raw, RawValue::Unsigned(370_085));

    // Ford 0x430: start bit 15 = MSB of byte 1: 50000 = 0x00C350 in bytes 1..3.
    let v = decode(
        &plan,
        &std_frame(0x430, &[0xEE, 0x00, 0xC3, 0x50, 0xEE, 0, 0, 0]),
    );
    assert_eq!(v["OdometerMasterValue"].raw, RawValue::Unsigned(50_000));

    // Toyota 0xB4: start bit 47 = MSB of byte 5: 88.50 km/h = 8850 = 0x2292.
    let v = decode(&plan, &std_frame(0xB4, &[0, 0, 0, 0, 0, 0x22, 0x92, 0]));
    assert_close(v["SPEED"].value, 88.5);

    // Hyundai 0x4F1: 9 bits from bit 8: 200 km/h = 400 = 0x190 -> byte 1 = 90, bit 0 of
    // byte 2 = 1 (its other bits are other data).
    let v = decode(&plan, &std_frame(0x4F1, &[0, 0x90, 0xFF, 0]));
    assert_close(v["CF_Clu_Vanz"].value, 200.0);
}

#[test]
fn signal_past_frame_end_is_an_error() {
    let file = DbcFile::parse("opendbc-odometers.dbc", OPENDBC_ODOMETERS).unwrap();
    let plan = file
        .compile(&[WantedSignal::by_name("CLU12", "CF_Clu_Odometer")])
        .unwrap();
    // The 24-bit odometer needs 3 bytes; a 2-byte frame has only two.
    let results: Vec<_> = plan.decode(&std_frame(0x5B0, &[0x06, 0x12])).collect();
    assert_eq!(results.len(), 1);
    let err = results[0].as_ref().unwrap_err();
    assert!(matches!(
        err,
        DecodeError::PastFrameEnd {
            needed: 3,
            len: 2,
            ..
        }
    ));
    let text = err.to_string();
    assert!(
        text.contains("0x5B0") && text.contains("CLU12") && text.contains("CF_Clu_Odometer"),
        "{text}"
    );
}

/// An FD message of 64 bytes, extended id 0x548, with a signal at bytes 60..61.
const FD_DBC: &str = r#"VERSION ""

BS_:

BO_ 2147485000 FD_STATUS: 64 XXX
 SG_ Far : 480|16@1- (0.5,-10) [-1000|1000] "" XXX
 SG_ FarBig : 495|16@0+ (1,0) [0|0] "" XXX
 SG_ Ratio : 0|32@1- (1,0) [0|0] "" XXX

SIG_VALTYPE_ 2147485000 Ratio : 1;
"#;

#[test]
fn can_fd_64_bytes_extended_and_float() {
    let file = DbcFile::parse("fd.dbc", FD_DBC).unwrap();
    let plan = file
        .compile(&all_of("FD_STATUS", &["Far", "FarBig", "Ratio"]))
        .unwrap();
    let id = crate::can::frame::raw_to_id(0x548, true).unwrap();
    let mut data = [0u8; 64];
    data[..4].copy_from_slice(&1.5f32.to_le_bytes());
    // Far: -3 = 0xFFFD, Intel at byte 60 -> FD FF; value -3 * 0.5 - 10 = -11.5.
    data[60] = 0xFD;
    data[61] = 0xFF;
    // FarBig: start bit 495 = MSB of byte 61: 0xFF then byte 62 = 0x01 -> 0xFF01.
    data[62] = 0x01;
    let frame = CanFrame::new_fd(id, &data, true).unwrap();
    let v = decode(&plan, &frame);
    assert_eq!(v["Far"].raw, RawValue::Signed(-3));
    assert_close(v["Far"].value, -11.5);
    assert_eq!(v["FarBig"].raw, RawValue::Unsigned(0xFF01));
    assert_close(v["Ratio"].value, 1.5);
    assert_eq!(plan.signals()[2].kind, ValueKind::Float32);

    // A 12-byte FD frame of the same id carries Ratio but not the far signals.
    let short = CanFrame::new_fd(id, &data[..12], true).unwrap();
    let results: Vec<_> = plan.decode(&short).collect();
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 2);
    assert!(results.iter().any(|r| matches!(r, Ok(v) if v.value == 1.5)));
}

#[test]
fn garbage_dbc_files_are_errors_naming_the_file() {
    let err =
        DbcFile::parse("garbage.dbc", "VERSION \"\"\n\nBO_ not a message at all\n").unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DbcError::Parse { .. }));
    assert!(
        text.contains("garbage.dbc") && text.contains("line 3:"),
        "{text}"
    );

    // Binary noise: not UTF-8, so it goes through the Windows-1252 path, then fails to parse.
    let noise: Vec<u8> = (0..2048u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let err = DbcFile::from_bytes("noise.dbc", &noise).unwrap_err();
    assert!(err.to_string().contains("noise.dbc"), "{err}");

    // A number too big for its field is a parse error too, not a panic.
    let huge = "BO_ 1 M: 8 X\n SG_ S : 99999999999999999999|8@1+ (1,0) [0|0] \"\" X\n";
    assert!(matches!(
        DbcFile::parse("huge.dbc", huge),
        Err(DbcError::Parse { .. })
    ));

    let err = DbcFile::load(Path::new("/nonexistent/rapport/none.dbc")).unwrap_err();
    assert!(matches!(err, DbcError::Read { .. }));
    assert!(err.to_string().contains("/nonexistent/rapport/none.dbc"));
}

const CHECK_DBC: &str = r#"VERSION ""

BS_:

BO_ 256 BODY: 8 XXX
 SG_ Fits : 0|16@1+ (1,0) [0|0] "" XXX
 SG_ Overhang : 56|16@1+ (1,0) [0|0] "" XXX
 SG_ Orphan m3 : 8|8@1+ (1,0) [0|0] "" XXX
 SG_ Beyond : 600|8@1+ (1,0) [0|0] "" XXX

BO_ 257 LOOP: 8 XXX
 SG_ A M : 0|8@1+ (1,0) [0|0] "" XXX
 SG_ B M : 8|8@1+ (1,0) [0|0] "" XXX
 SG_ Value m1 : 16|8@1+ (1,0) [0|0] "" XXX

SG_MUL_VAL_ 257 Value A 1-1;
SG_MUL_VAL_ 257 A B 1-1;
SG_MUL_VAL_ 257 B A 1-1;
"#;

#[test]
fn check_reports_every_problem_by_name() {
    let file = DbcFile::parse("check.dbc", CHECK_DBC).unwrap();
    let wanted = [
        WantedSignal::by_name("BODY", "Fits"),
        WantedSignal::by_name("NOPE", "Fits"),
        WantedSignal::by_id(0x1_00, "Missing"),
        WantedSignal::by_name("BODY", "Overhang"),
        WantedSignal::by_name("BODY", "Orphan"),
        WantedSignal::by_name("BODY", "Beyond"),
        WantedSignal::by_name("LOOP", "Value"),
    ];
    let errors = file.check(&wanted);
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 6, "{texts:#?}");
    assert!(
        texts.iter().all(|t| t.starts_with("DBC file check.dbc: ")),
        "{texts:#?}"
    );
    assert!(matches!(&errors[0], DbcError::UnknownMessage { message, .. } if message == "NOPE"));
    assert!(matches!(&errors[1], DbcError::UnknownSignal { signal, .. } if signal == "Missing"));
    assert!(texts[1].contains("BODY (0x100)"), "{}", texts[1]);
    assert!(matches!(
        &errors[2],
        DbcError::OutsideMessage {
            needed: 9,
            dlc: 8,
            ..
        }
    ));
    assert!(texts[2].contains("Overhang"));
    assert!(
        texts[3].contains("Orphan") && texts[3].contains("no multiplexor"),
        "{}",
        texts[3]
    );
    assert!(matches!(&errors[4], DbcError::Layout { .. }));
    // A and B gate each other: refused, not looped on.
    assert!(
        texts[5].contains("Value") && texts[5].contains("cycle"),
        "{}",
        texts[5]
    );

    assert!(file.compile(&wanted).is_err());
    assert!(file.compile(&wanted[..1]).is_ok());
}

#[test]
fn multiplexor_past_frame_end() {
    let file = DbcFile::load(&fixture("passenger.dbc")).unwrap();
    let plan = file
        .compile(&[WantedSignal::by_name("BODY_STATUS", "FuelLevel")])
        .unwrap();
    let results: Vec<_> = plan.decode(&std_frame(1296, &[])).collect();
    assert!(matches!(
        results.as_slice(),
        [Err(DecodeError::MultiplexorPastFrameEnd {
            needed: 1,
            len: 0,
            ..
        })]
    ));
    // Remote frames carry no data and yield nothing.
    let id = crate::can::frame::raw_to_id(1296, false).unwrap();
    let remote = <CanFrame as embedded_can::Frame>::new_remote(id, 8).unwrap();
    assert_eq!(plan.decode(&remote).count(), 0);
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

#[test]
fn passenger_fixture_decodes() {
    let file = DbcFile::load(&fixture("passenger.dbc")).unwrap();
    assert_eq!(file.message_count(), 2);
    let wanted = [
        WantedSignal::by_name("CLUSTER_1", "Odometer"),
        WantedSignal::by_name("CLUSTER_1", "VehicleSpeed"),
        WantedSignal::by_name("CLUSTER_1", "GearLever"),
        WantedSignal::by_name("BODY_STATUS", "FuelLevel"),
        WantedSignal::by_name("BODY_STATUS", "BatteryVoltage"),
        WantedSignal::by_name("BODY_STATUS", "OutsideTemp"),
    ];
    assert!(file.check(&wanted).is_empty());
    let plan = file.compile(&wanted).unwrap();

    // Odometer 12345.6 km = 123456 = 0x01E240 (Intel 40 E2 01); gear D = 3;
    // speed 88.50 km/h = 8850 = 0x2292 (Motorola from bit 39 = MSB of byte 4).
    let v = decode(
        &plan,
        &std_frame(1280, &[0x40, 0xE2, 0x01, 0x03, 0x22, 0x92, 0, 0]),
    );
    assert_close(v["Odometer"].value, 12_345.6);
    assert_close(v["VehicleSpeed"].value, 88.5);
    let gear = &plan.signals()[2];
    assert_eq!(gear.label(v["GearLever"].raw), Some("D"));
    assert_eq!(gear.label(RawValue::Unsigned(0)), Some("P"));

    // Speed 0xFFFF (not available) decodes to 655.35, above [0|400]: flagged.
    let v = decode(&plan, &std_frame(1280, &[0, 0, 0, 0, 0xFF, 0xFF, 0, 0]));
    assert!(v["VehicleSpeed"].out_of_range);

    // Page 1: battery 12.6 V (126) and outside -5.5 degC (-11 = 0xF5); fuel is page 0 only.
    let v = decode(&plan, &std_frame(1296, &[0x01, 0x7E, 0xF5, 0, 0, 0, 0, 0]));
    assert_eq!(v.len(), 2, "{v:?}");
    assert_close(v["BatteryVoltage"].value, 12.6);
    assert_close(v["OutsideTemp"].value, -5.5);
    // Page 0: fuel 50 % (100).
    let v = decode(&plan, &std_frame(1296, &[0x00, 0x64, 0x02, 0, 0, 0, 0, 0]));
    assert_eq!(v.len(), 1);
    assert_close(v["FuelLevel"].value, 50.0);
}
