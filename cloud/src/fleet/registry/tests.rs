#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use rapport_shared::Timestamp;

use super::*;
use crate::fleet::model::DAY_MS;

/// A date's first instant, as the registry keeps a delivery date.
fn parse_date(text: &str) -> Result<Timestamp, String> {
    CivilDate::parse(text).map(CivilDate::midnight_utc)
}

/// The date of an instant, as the registry writes it.
fn format_date(t: Timestamp) -> String {
    CivilDate::of(t).to_string()
}

const EXAMPLE: &str = include_str!("../../../../config/registry.example.csv");

const H: &str = "vin,category,line,delivered,dealer,region,partner_sharing,engagement\n";

fn vin(s: &str) -> Vin {
    s.parse().unwrap()
}

/// The one error of a file that has exactly one.
fn one_error(result: Result<Vec<Registration>, Vec<ImportError>>) -> ImportError {
    let mut errors = result.unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.remove(0)
}

#[test]
fn the_example_file_parses() {
    let regs = parse_csv(EXAMPLE).unwrap();
    assert_eq!(regs.len(), 6);
    assert_eq!(
        regs[0],
        Registration {
            vin: vin("WVWZZZ1J30W000001"),
            category: Category::Passenger,
            line: "e-compact 2025".into(),
            delivered: Some(parse_date("2025-03-14").unwrap()),
            dealer: Some("dealer-berlin-01".into()),
            region: Some("DE-BE".into()),
            consents: Consents {
                partner_sharing: true,
                engagement: true,
            },
            owner_since: None,
            owner: None,
        }
    );
    assert!(!regs[1].consents.engagement, "no");
    assert_eq!(regs[2].category, Category::Commercial);
    assert_eq!(regs[2].line, "pickup 2.7, crew cab", "quoted comma");
    assert!(regs[2].consents.partner_sharing, "1");
    assert_eq!(regs[3].delivered, None, "empty date cell");
    assert_eq!(regs[4].dealer, None);
    assert_eq!(regs[4].consents, Consents::default(), "empty: not given");
    assert_eq!(regs[5].region, None);
}

#[test]
fn a_good_file_round_trips_through_csv_and_toml() {
    let regs = parse_csv(EXAMPLE).unwrap();
    let csv = to_csv(&regs);
    assert!(csv.starts_with(&format!("{HEADER}\n")));
    assert_eq!(parse_csv(&csv).unwrap(), regs);
    assert_eq!(parse_toml(&to_toml(&regs)).unwrap(), regs);
}

#[test]
fn columns_in_any_order_optional_ones_left_out() {
    let text = "# comment\n\nLine, VIN ,category\n  city hatch , VF1RFB0096C000005,Commercial\n";
    let regs = parse_csv(text).unwrap();
    assert_eq!(regs.len(), 1);
    assert_eq!(regs[0].vin, vin("VF1RFB0096C000005"));
    assert_eq!(regs[0].category, Category::Commercial);
    assert_eq!(regs[0].line, "city hatch");
    assert_eq!(
        (regs[0].delivered, &regs[0].dealer),
        (None, &None::<String>)
    );
    // A byte-order mark (spreadsheet exports) is not part of the first column's name.
    let bom = format!("\u{feff}{H}VF1RFB0096C000005,passenger,x,,,,,\n");
    assert_eq!(parse_csv(&bom).unwrap().len(), 1);
    // A header alone is an empty registry.
    assert_eq!(parse_csv(H).unwrap(), vec![]);
}

#[test]
fn invalid_vin_names_line_field_and_value() {
    let text =
        format!("{H}WVWZZZ1J30W000001,passenger,x,,,,,\nWVWZZZ1J30W00000I,passenger,x,,,,,\n");
    let e = one_error(parse_csv(&text));
    assert_eq!(e.line, 3);
    assert_eq!(e.field.as_deref(), Some("vin"));
    assert_eq!(e.value.as_deref(), Some("WVWZZZ1J30W00000I"));
    assert!(matches!(
        e.problem,
        ImportProblem::InvalidVin(VinError::Character {
            position: 17,
            found: 'I'
        })
    ));
    assert!(
        e.to_string()
            .starts_with("line 3, vin \"WVWZZZ1J30W00000I\": invalid VIN: VIN character 17"),
        "{e}"
    );
    let short = format!("{H}WVWZZZ1J30W0001,passenger,x,,,,,\n");
    assert!(matches!(
        one_error(parse_csv(&short)).problem,
        ImportProblem::InvalidVin(VinError::Length(15))
    ));
}

#[test]
fn unknown_category() {
    let text = format!("{H}WVWZZZ1J30W000001,truck,x,,,,,\n");
    let e = one_error(parse_csv(&text));
    assert_eq!(
        (e.line, e.field.as_deref(), e.value.as_deref()),
        (2, Some("category"), Some("truck"))
    );
    assert!(matches!(e.problem, ImportProblem::UnknownCategory(_)));
    assert!(e.to_string().contains("passenger, commercial"), "{e}");
}

#[test]
fn bad_dates() {
    for (date, why) in [
        ("2023-02-29", "day 29 is not 1-28"),
        ("2025-13-01", "month 13 is not 1-12"),
        ("2025-04-31", "day 31 is not 1-30"),
        ("14.03.2025", "is not a date YYYY-MM-DD"),
        ("2025-3-14", "is not a date YYYY-MM-DD"),
        ("1969-12-31", "year 1969 is not 1970-9999"),
        ("2025-03-14T10:00", "is not a date YYYY-MM-DD"),
    ] {
        let text = format!("{H}WVWZZZ1J30W000001,passenger,x,{date},,,,\n");
        let e = one_error(parse_csv(&text));
        assert_eq!(
            (e.line, e.field.as_deref(), e.value.as_deref()),
            (2, Some("delivered"), Some(date))
        );
        match e.problem {
            ImportProblem::BadDate(m) => assert!(m.contains(why), "{date}: {m}"),
            other => panic!("{date}: {other:?}"),
        }
    }
}

#[test]
fn dates_are_midnight_utc() {
    assert_eq!(parse_date("1970-01-01").unwrap().as_millis(), 0);
    assert_eq!(
        parse_date("2000-03-01").unwrap().as_millis(),
        951_868_800_000
    );
    assert_eq!(
        parse_date("2024-02-29").unwrap().as_millis(),
        1_709_164_800_000
    );
    assert_eq!(
        parse_date("2025-01-01").unwrap().as_millis(),
        1_735_689_600_000
    );
    assert_eq!(
        format_date(Timestamp::from_millis(1_709_164_800_000 + DAY_MS - 1)),
        "2024-02-29"
    );
    assert!(parse_date("2000-02-29").is_ok(), "400-year leap");
    assert!(parse_date("2100-02-29").is_err(), "100-year non-leap");
}

#[test]
fn duplicate_vin_names_both_lines() {
    let text = format!(
        "{H}WVWZZZ1J30W000001,passenger,x,,,,,\n\
         WVWZZZ1J50W000002,passenger,x,,,,,\n\
         WVWZZZ1J30W000001,commercial,y,,,,,\n"
    );
    let e = one_error(parse_csv(&text));
    assert_eq!(
        (e.line, e.field.as_deref(), e.value.as_deref()),
        (4, Some("vin"), Some("WVWZZZ1J30W000001"))
    );
    assert_eq!(e.problem, ImportProblem::DuplicateVin { first_line: 2 });
}

#[test]
fn wrong_column_count() {
    let text =
        format!("{H}WVWZZZ1J30W000001,passenger,x,,,,\nWVWZZZ1J50W000002,passenger,x,,,,,,\n");
    let errors = parse_csv(&text).unwrap_err();
    assert_eq!(
        errors
            .iter()
            .map(|e| (e.line, &e.problem))
            .collect::<Vec<_>>(),
        [
            (
                2,
                &ImportProblem::ColumnCount {
                    expected: 8,
                    found: 7
                }
            ),
            (
                3,
                &ImportProblem::ColumnCount {
                    expected: 8,
                    found: 9
                }
            ),
        ]
    );
}

#[test]
fn booleans() {
    for (text, expected) in [
        ("true", true),
        ("yes", true),
        ("1", true),
        ("YES", true),
        ("false", false),
        ("no", false),
        ("0", false),
        ("", false),
    ] {
        let csv = format!("{H}WVWZZZ1J30W000001,passenger,x,,,,{text},\n");
        assert_eq!(
            parse_csv(&csv).unwrap()[0].consents.partner_sharing,
            expected,
            "{text:?}"
        );
    }
    let csv = format!("{H}WVWZZZ1J30W000001,passenger,x,,,,,maybe\n");
    let e = one_error(parse_csv(&csv));
    assert_eq!(
        (e.line, e.field.as_deref(), e.value.as_deref(), e.problem),
        (2, Some("engagement"), Some("maybe"), ImportProblem::BadBool)
    );
}

#[test]
fn missing_required_values() {
    let text = format!("{H},passenger,,,,,,\n");
    let errors = parse_csv(&text).unwrap_err();
    let found: Vec<_> = errors
        .iter()
        .map(|e| (e.line, e.field.as_deref(), &e.problem))
        .collect();
    assert_eq!(
        found,
        [
            (2, Some("vin"), &ImportProblem::Missing),
            (2, Some("line"), &ImportProblem::Missing)
        ]
    );
}

#[test]
fn header_problems() {
    let e = parse_csv("vin,category,line,colour\n").unwrap_err();
    assert_eq!(
        (e[0].line, e[0].field.as_deref(), &e[0].problem),
        (1, Some("colour"), &ImportProblem::UnknownColumn)
    );
    let e = parse_csv("# about\nvin,category,vin,line\n").unwrap_err();
    assert_eq!(
        (e[0].line, e[0].field.as_deref(), &e[0].problem),
        (2, Some("vin"), &ImportProblem::DuplicateColumn)
    );
    let e = parse_csv("vin,line\nWVWZZZ1J30W000001,x\n").unwrap_err();
    assert_eq!(
        (e[0].line, e[0].field.as_deref(), &e[0].problem),
        (1, Some("category"), &ImportProblem::MissingColumn)
    );
    let e = parse_csv("").unwrap_err();
    assert_eq!((e[0].line, &e[0].problem), (1, &ImportProblem::Empty));
    assert_eq!(
        parse_csv("# only a comment\n\n").unwrap_err()[0].problem,
        ImportProblem::Empty
    );
}

#[test]
fn every_problem_in_one_pass_in_line_order_with_comments_counted() {
    let text = format!(
        "# registry\n{H}\
         WVWZZZ1J30W000001,lorry,x,2025-02-30,,,,\n\
         # a comment between rows\n\
         \n\
         WVWZZZ1J50W000002,passenger,x,,,,nope,\n\
         VF1RFB0096C000005,passenger,ok,,,,,\n"
    );
    let errors = parse_csv(&text).unwrap_err();
    let found: Vec<_> = errors
        .iter()
        .map(|e| (e.line, e.field.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        found,
        [(3, "category"), (3, "delivered"), (6, "partner_sharing")]
    );
}

const TOML_GOOD: &str = r#"
[[vehicle]]
vin = "WVWZZZ1J30W000001"
category = "passenger"
line = "e-compact 2025"
delivered = 2025-03-14
dealer = "dealer-berlin-01"
region = "DE-BE"
partner_sharing = true
engagement = false

[[vehicle]]
vin = "1FTFW1E55NFA00003"
category = "commercial"
line = "pickup"
delivered = "2023-06-30"
"#;

#[test]
fn toml_file_parses_with_native_and_string_dates() {
    let regs = parse_toml(TOML_GOOD).unwrap();
    assert_eq!(regs.len(), 2);
    assert_eq!(regs[0].delivered, Some(parse_date("2025-03-14").unwrap()));
    assert_eq!(
        regs[0].consents,
        Consents {
            partner_sharing: true,
            engagement: false
        }
    );
    assert_eq!(regs[1].delivered, Some(parse_date("2023-06-30").unwrap()));
    assert_eq!(regs[1].dealer, None);
    assert_eq!(regs[1].category, Category::Commercial);
    assert_eq!(parse_toml("").unwrap(), vec![]);
}

#[test]
fn toml_problems_name_their_line() {
    let text = r#"[[vehicle]]
vin = "WVWZZZ1J30W000001"
category = "passenger"
line = "x"
colour = "red"
delivered = 2025-03-14T10:00:00Z
engagement = "often"

[[vehicle]]
vin = 12
category = "passenger"
line = "y"

[[vehicle]]
vin = "WVWZZZ1J30W000001"
category = "passenger"
"#;
    let errors = parse_toml(text).unwrap_err();
    let found: Vec<_> = errors
        .iter()
        .map(|e| (e.line, e.field.as_deref().unwrap_or(""), &e.problem))
        .collect();
    assert_eq!(found.len(), 6, "{errors:#?}");
    assert_eq!(found[0], (5, "colour", &ImportProblem::UnknownKey));
    assert_eq!((found[1].0, found[1].1), (6, "delivered"));
    assert!(matches!(found[1].2, ImportProblem::BadDate(_)));
    assert_eq!(found[2], (7, "engagement", &ImportProblem::BadBool));
    assert_eq!(found[3], (10, "vin", &ImportProblem::WrongType("a string")));
    assert_eq!(errors[3].value.as_deref(), Some("12"));
    assert_eq!(
        found[4],
        (14, "line", &ImportProblem::Missing),
        "a missing key: the table's line"
    );
    assert_eq!(
        found[5],
        (15, "vin", &ImportProblem::DuplicateVin { first_line: 2 })
    );
}

#[test]
fn toml_syntax_and_shape_errors() {
    let e = one_error(parse_toml("[[vehicle]]\nvin = \"unterminated\n"));
    assert_eq!(e.line, 2);
    assert!(matches!(e.problem, ImportProblem::Syntax(_)));
    let e = one_error(parse_toml("\n[[vehicles]]\nvin = \"x\"\n"));
    assert_eq!(e.line, 2);
    assert!(e.to_string().contains("vehicles"), "{e}");
}

fn text() -> impl Strategy<Value = String> {
    // Anything but leading/trailing spaces (cells are trimmed) and control characters.
    "[a-zA-Z0-9 ,\"'#=.-]{0,12}[a-zA-Z0-9,\"'#.-]"
        .prop_map(|s| s.trim_start().to_owned())
        .prop_filter("not empty", |s| !s.is_empty())
}

fn registration() -> impl Strategy<Value = Registration> {
    (
        "[A-HJ-NPR-Z0-9]{17}",
        any::<bool>(),
        text(),
        proptest::option::of(0u64..2_932_896),
        proptest::option::of(text()),
        proptest::option::of(text()),
        any::<(bool, bool)>(),
    )
        .prop_map(
            |(v, commercial, line, day, dealer, region, (ps, en))| Registration {
                vin: vin(&v),
                category: if commercial {
                    Category::Commercial
                } else {
                    Category::Passenger
                },
                line,
                delivered: day.map(|d| Timestamp::from_millis(d * DAY_MS)),
                dealer,
                region,
                consents: Consents {
                    partner_sharing: ps,
                    engagement: en,
                },
                owner_since: None,
                owner: None,
            },
        )
}

proptest! {
    #[test]
    fn any_registry_round_trips(regs in proptest::collection::vec(registration(), 0..12)) {
        let mut seen = std::collections::HashSet::new();
        let regs: Vec<_> = regs.into_iter().filter(|r| seen.insert(r.vin)).collect();
        prop_assert_eq!(parse_csv(&to_csv(&regs)).unwrap(), regs.clone());
        prop_assert_eq!(parse_toml(&to_toml(&regs)).unwrap(), regs);
    }

    #[test]
    fn dates_round_trip(day in 0u64..2_932_897) {
        let t = Timestamp::from_millis(day * DAY_MS);
        prop_assert_eq!(parse_date(&format_date(t)).unwrap(), t);
    }

    #[test]
    fn garbage_never_panics(text in "\\PC{0,200}") {
        let _ = parse_csv(&text);
        let _ = parse_toml(&text);
    }
}

#[test]
fn owner_columns_parse_and_round_trip() {
    let csv = "vin,category,line,owner_since,owner\n\
               WVWZZZ1J30W000001,passenger,e-compact 2025,2031-09-12,crm-99\n\
               WVWZZZ1J30W000002,passenger,e-compact 2025,,\n";
    let regs = parse_csv(csv).unwrap();
    assert_eq!(regs[0].owner_since, Some(parse_date("2031-09-12").unwrap()));
    assert_eq!(regs[0].owner.as_deref(), Some("crm-99"));
    assert_eq!(
        (regs[1].owner_since, regs[1].owner.as_deref()),
        (None, None)
    );
    assert_eq!(parse_csv(&to_csv(&regs)).unwrap(), regs);
    assert_eq!(parse_toml(&to_toml(&regs)).unwrap(), regs);
    let bad =
        parse_csv("vin,category,line,owner_since\nWVWZZZ1J30W000001,passenger,x,2031-13-01\n")
            .unwrap_err();
    assert_eq!(bad[0].field.as_deref(), Some("owner_since"), "{bad:?}");
}
