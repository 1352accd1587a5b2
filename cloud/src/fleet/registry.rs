//! The vehicle registry's import and export formats: CSV and TOML files of
//! [`Registration`]s, as a manufacturer's or dealer's system hands them over.
//!
//! Owns parsing ([`parse_csv`], [`parse_toml`]: text in, registrations or every problem
//! out, each naming its line, field and value) and writing ([`to_csv`], [`to_toml`]). A
//! delivery date is a [`CivilDate`] (`YYYY-MM-DD`), kept as its midnight UTC. Does not own
//! storing registrations, the API that manages them, the date format ([`CivilDate`]), or
//! what layering makes of them. Pure: no I/O.
//!
//! CSV: a header line naming the columns, in any order, among
//! `vin,category,line,delivered,dealer,region,partner_sharing,engagement,owner_since,owner`;
//! `vin`, `category` and `line` are required, the others may be left out. `owner_since` (a
//! date) and `owner` (an opaque reference) express an owner change: a row whose
//! `owner_since` is later than the stored one starts a new relationship (see
//! `docs/data-rights.md`, "Owner change"). Cells are trimmed; an
//! empty cell is absent (no date, no dealer, no consent). Lines starting with `#` are
//! comments and blank lines are skipped. Consents are `true/false`, `yes/no` or `1/0` (any
//! case); absent means not given.
//!
//! TOML: one `[[vehicle]]` table per vehicle with the same keys; `delivered` is a TOML date
//! (`2025-03-14`) or a string in the same form; consents are booleans (or the same words).

use core::fmt;
use std::collections::{BTreeMap, HashMap};

use rapport_shared::{CivilDate, Vin, VinError};

use super::model::{Category, Consents, Registration};

/// The CSV header in its canonical order (what [`to_csv`] writes).
pub const HEADER: &str =
    "vin,category,line,delivered,dealer,region,partner_sharing,engagement,owner_since,owner";

/// One problem in an import file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// 1-based line in the file.
    pub line: usize,
    /// The column or key (`category`), if the problem is in one.
    pub field: Option<String>,
    /// The offending value as written, if any.
    pub value: Option<String>,
    /// What is wrong.
    pub problem: ImportProblem,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(field) = &self.field {
            write!(f, ", {field}")?;
        }
        if let Some(value) = &self.value {
            write!(f, " {value:?}")?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl std::error::Error for ImportError {}

/// What is wrong with an import file at one place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImportProblem {
    /// The file is not CSV or TOML as expected.
    #[error("syntax: {0}")]
    Syntax(String),
    /// No header line.
    #[error("the file is empty: expected a header line `{HEADER}`")]
    Empty,
    /// A header column that is not a registry field.
    #[error("unknown column: the columns are `{HEADER}`")]
    UnknownColumn,
    /// A header column given twice.
    #[error("column given twice in the header")]
    DuplicateColumn,
    /// A required column is not in the header.
    #[error("required column missing from the header")]
    MissingColumn,
    /// A row with more or fewer cells than the header.
    #[error("{found} cells where the header has {expected}")]
    ColumnCount {
        /// Columns in the header.
        expected: usize,
        /// Cells in the row.
        found: usize,
    },
    /// A required value is empty or absent.
    #[error("required, but empty")]
    Missing,
    /// Not a VIN.
    #[error("invalid VIN: {0}")]
    InvalidVin(VinError),
    /// Not a category.
    #[error("unknown category: {0}")]
    UnknownCategory(String),
    /// Not a `YYYY-MM-DD` date.
    #[error("bad date: {0}")]
    BadDate(String),
    /// Not a boolean.
    #[error("not a boolean: use true/false, yes/no or 1/0")]
    BadBool,
    /// A VIN already registered earlier in the file.
    #[error("duplicate VIN: already on line {first_line}")]
    DuplicateVin {
        /// Where it first appeared.
        first_line: usize,
    },
    /// A TOML key that is not a registry field.
    #[error("unknown key: the keys are `{HEADER}`")]
    UnknownKey,
    /// A TOML value of the wrong type.
    #[error("expected {0}")]
    WrongType(&'static str),
}

impl ImportError {
    fn at(line: usize, problem: ImportProblem) -> Self {
        Self {
            line,
            field: None,
            value: None,
            problem,
        }
    }

    fn field(line: usize, field: &str, value: Option<&str>, problem: ImportProblem) -> Self {
        Self {
            line,
            field: Some(field.to_owned()),
            value: value.map(str::to_owned),
            problem,
        }
    }
}

/// The registry's fields, in canonical order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Vin,
    Category,
    Line,
    Delivered,
    Dealer,
    Region,
    PartnerSharing,
    Engagement,
    OwnerSince,
    Owner,
}

const FIELDS: [(Field, &str); 10] = [
    (Field::Vin, "vin"),
    (Field::Category, "category"),
    (Field::Line, "line"),
    (Field::Delivered, "delivered"),
    (Field::Dealer, "dealer"),
    (Field::Region, "region"),
    (Field::PartnerSharing, "partner_sharing"),
    (Field::Engagement, "engagement"),
    (Field::OwnerSince, "owner_since"),
    (Field::Owner, "owner"),
];

const REQUIRED: [Field; 3] = [Field::Vin, Field::Category, Field::Line];

impl Field {
    fn name(self) -> &'static str {
        FIELDS[self as usize].1
    }

    fn from_name(name: &str) -> Option<Self> {
        FIELDS
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(f, _)| *f)
    }
}

/// One value as written, with the line it is on.
struct Cell {
    text: String,
    line: usize,
}

/// One field of a record.
#[derive(Default)]
enum Slot {
    /// Not given (or empty).
    #[default]
    Absent,
    /// Given, but already reported as unusable (a TOML value of the wrong type).
    Reported,
    /// Given.
    Given(Cell),
}

/// A record's fields by [`Field`] index.
type Cells = [Slot; FIELDS.len()];

/// Parses a registry CSV file (see the module doc for its shape).
///
/// # Errors
/// Every problem found, in line order: a bad header stops there; otherwise each row is
/// checked in full and bad rows are skipped, so one pass names every mistake.
pub fn parse_csv(text: &str) -> Result<Vec<Registration>, Vec<ImportError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    // csv's position of a record is where the reader stood before it skipped comment and
    // blank lines (and its line count leaves comments out): find the record's own line.
    let lines = Lines::new(text);
    let line_of = |pos: Option<&csv::Position>| pos.map_or(0, |p| lines.record_at(text, p.byte()));

    let header = match records.next() {
        None => return Err(vec![ImportError::at(1, ImportProblem::Empty)]),
        Some(Err(e)) => return Err(vec![syntax(&e, &lines)]),
        Some(Ok(h)) => h,
    };
    let header_line = line_of(header.position());
    let mut errors = Vec::new();
    let mut columns: Vec<Field> = Vec::with_capacity(header.len());
    for name in &header {
        match Field::from_name(name) {
            None => errors.push(ImportError::field(
                header_line,
                name,
                None,
                ImportProblem::UnknownColumn,
            )),
            Some(f) if columns.contains(&f) => errors.push(ImportError::field(
                header_line,
                name,
                None,
                ImportProblem::DuplicateColumn,
            )),
            Some(f) => columns.push(f),
        }
    }
    for f in REQUIRED {
        if !columns.contains(&f) {
            errors.push(ImportError::field(
                header_line,
                f.name(),
                None,
                ImportProblem::MissingColumn,
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut out = Vec::new();
    let mut seen = HashMap::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(syntax(&e, &lines));
                continue;
            }
        };
        let line = line_of(record.position());
        if record.len() != columns.len() {
            errors.push(ImportError::at(
                line,
                ImportProblem::ColumnCount {
                    expected: columns.len(),
                    found: record.len(),
                },
            ));
            continue;
        }
        let mut cells: Cells = Default::default();
        for (field, text) in columns.iter().zip(&record) {
            if !text.is_empty() {
                cells[*field as usize] = Slot::Given(Cell {
                    text: text.to_owned(),
                    line,
                });
            }
        }
        if let Some(r) = registration(line, &cells, &mut seen, &mut errors) {
            out.push(r);
        }
    }
    finish(out, errors)
}

fn syntax(e: &csv::Error, lines: &Lines) -> ImportError {
    let line = e.position().map_or(0, |p| lines.at(p.byte()));
    ImportError::at(line, ImportProblem::Syntax(e.to_string()))
}

/// Byte offset → 1-based line number.
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Self {
        let starts = core::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self(starts)
    }

    fn at(&self, offset: u64) -> usize {
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        self.0.partition_point(|&start| start <= offset)
    }

    /// The line of the first record at or after `offset`: past comment and empty lines.
    fn record_at(&self, text: &str, offset: u64) -> usize {
        let mut line = self.at(offset);
        while let Some(&start) = self.0.get(line - 1) {
            let end = self.0.get(line).map_or(text.len(), |next| next - 1);
            let content = text.get(start..end).unwrap_or("");
            if !(content.is_empty() || content == "\r" || content.starts_with('#')) {
                break;
            }
            line += 1;
        }
        line
    }
}

fn finish(
    out: Vec<Registration>,
    mut errors: Vec<ImportError>,
) -> Result<Vec<Registration>, Vec<ImportError>> {
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

/// The TOML file's shape: `[[vehicle]]` tables, each key with its place in the text.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    vehicle: Vec<toml::Spanned<BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>>>>,
}

/// Parses a registry TOML file: `[[vehicle]]` tables (see the module doc).
///
/// # Errors
/// A syntax or shape error (one, with its line), or every problem with the vehicles' values,
/// in line order.
pub fn parse_toml(text: &str) -> Result<Vec<Registration>, Vec<ImportError>> {
    let lines = Lines::new(text);
    let line_at = |offset: usize| lines.at(offset as u64);
    let file: TomlFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_at(s.start));
        vec![ImportError::at(
            line,
            ImportProblem::Syntax(e.message().to_owned()),
        )]
    })?;
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut seen = HashMap::new();
    for table in file.vehicle {
        let table_line = line_at(table.span().start);
        let mut cells: Cells = Default::default();
        for (key, value) in table.into_inner() {
            let line = line_at(value.span().start);
            let Some(field) = Field::from_name(key.get_ref()) else {
                errors.push(ImportError::field(
                    line_at(key.span().start),
                    key.get_ref(),
                    None,
                    ImportProblem::UnknownKey,
                ));
                continue;
            };
            match toml_text(field, value.get_ref()) {
                Ok(text) if text.trim().is_empty() => {}
                Ok(text) => cells[field as usize] = Slot::Given(Cell { text, line }),
                Err(expected) => {
                    cells[field as usize] = Slot::Reported;
                    errors.push(ImportError::field(
                        line,
                        field.name(),
                        Some(&value.get_ref().to_string()),
                        ImportProblem::WrongType(expected),
                    ));
                }
            }
        }
        if let Some(r) = registration(table_line, &cells, &mut seen, &mut errors) {
            out.push(r);
        }
    }
    finish(out, errors)
}

/// A TOML value as the text the shared checks read, or the type it should have been.
fn toml_text(field: Field, value: &toml::Value) -> Result<String, &'static str> {
    match (field, value) {
        (_, toml::Value::String(s)) => Ok(s.trim().to_owned()),
        (Field::Delivered | Field::OwnerSince, toml::Value::Datetime(d)) => Ok(d.to_string()),
        (Field::Delivered | Field::OwnerSince, _) => Err("a date (2025-03-14)"),
        (Field::PartnerSharing | Field::Engagement, toml::Value::Boolean(b)) => Ok(b.to_string()),
        (Field::PartnerSharing | Field::Engagement, _) => Err("a boolean"),
        _ => Err("a string"),
    }
}

/// Checks one record's cells; pushes every problem; `None` if there was one.
fn registration(
    record_line: usize,
    cells: &Cells,
    seen: &mut HashMap<Vin, usize>,
    errors: &mut Vec<ImportError>,
) -> Option<Registration> {
    let before = errors.len();
    let cell = |f: Field| match &cells[f as usize] {
        Slot::Given(c) => Some(c),
        Slot::Absent | Slot::Reported => None,
    };
    let mut fail = |f: Field, c: &Cell, problem| {
        errors.push(ImportError::field(c.line, f.name(), Some(&c.text), problem));
    };
    let mut required = Vec::new();
    for f in REQUIRED {
        if matches!(cells[f as usize], Slot::Absent) {
            required.push(f);
        }
    }

    let vin = cell(Field::Vin).and_then(|c| match c.text.parse::<Vin>() {
        Ok(v) => Some(v),
        Err(e) => {
            fail(Field::Vin, c, ImportProblem::InvalidVin(e));
            None
        }
    });
    let category =
        cell(Field::Category).and_then(|c| match c.text.to_ascii_lowercase().parse::<Category>() {
            Ok(v) => Some(v),
            Err(e) => {
                fail(Field::Category, c, ImportProblem::UnknownCategory(e));
                None
            }
        });
    let delivered = cell(Field::Delivered).and_then(|c| match CivilDate::parse(&c.text) {
        Ok(d) => Some(d.midnight_utc()),
        Err(e) => {
            fail(Field::Delivered, c, ImportProblem::BadDate(e));
            None
        }
    });
    let owner_since = cell(Field::OwnerSince).and_then(|c| match CivilDate::parse(&c.text) {
        Ok(d) => Some(d.midnight_utc()),
        Err(e) => {
            fail(Field::OwnerSince, c, ImportProblem::BadDate(e));
            None
        }
    });
    let mut consent = |f: Field| {
        cell(f).is_some_and(|c| match parse_bool(&c.text) {
            Some(b) => b,
            None => {
                fail(f, c, ImportProblem::BadBool);
                false
            }
        })
    };
    let consents = Consents {
        partner_sharing: consent(Field::PartnerSharing),
        engagement: consent(Field::Engagement),
    };
    for f in required {
        errors.push(ImportError::field(
            record_line,
            f.name(),
            None,
            ImportProblem::Missing,
        ));
    }
    if let Some(vin) = vin {
        if let Some(first_line) = seen.get(&vin) {
            errors.push(ImportError::field(
                cell(Field::Vin).map_or(record_line, |c| c.line),
                "vin",
                Some(vin.as_str()),
                ImportProblem::DuplicateVin {
                    first_line: *first_line,
                },
            ));
        } else {
            seen.insert(vin, cell(Field::Vin).map_or(record_line, |c| c.line));
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(Registration {
        vin: vin?,
        category: category?,
        line: cell(Field::Line)?.text.clone(),
        delivered,
        dealer: cell(Field::Dealer).map(|c| c.text.clone()),
        region: cell(Field::Region).map(|c| c.text.clone()),
        consents,
        owner_since,
        owner: cell(Field::Owner).map(|c| c.text.clone()),
    })
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// A CSV cell, quoted when it must be (a comma, quote, line break, or edge spaces).
fn csv_cell(out: &mut String, text: &str) {
    let needs_quotes = text.contains([',', '"', '\n', '\r']) || text.trim() != text;
    if needs_quotes {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// Writes registrations as a registry CSV file that [`parse_csv`] reads back (values with
/// leading or trailing spaces come back trimmed).
pub fn to_csv(registrations: &[Registration]) -> String {
    let mut out = String::with_capacity(64 * (registrations.len() + 1));
    out.push_str(HEADER);
    out.push('\n');
    for r in registrations {
        let delivered = r.delivered.map(|t| CivilDate::of(t).to_string());
        let owner_since = r.owner_since.map(|t| CivilDate::of(t).to_string());
        let cells = [
            r.vin.as_str(),
            r.category.as_str(),
            &r.line,
            delivered.as_deref().unwrap_or(""),
            r.dealer.as_deref().unwrap_or(""),
            r.region.as_deref().unwrap_or(""),
            if r.consents.partner_sharing {
                "true"
            } else {
                "false"
            },
            if r.consents.engagement {
                "true"
            } else {
                "false"
            },
            owner_since.as_deref().unwrap_or(""),
            r.owner.as_deref().unwrap_or(""),
        ];
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            csv_cell(&mut out, c);
        }
        out.push('\n');
    }
    out
}

/// Writes registrations as a registry TOML file that [`parse_toml`] reads back.
pub fn to_toml(registrations: &[Registration]) -> String {
    let string = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut out = String::new();
    for r in registrations {
        out.push_str("[[vehicle]]\n");
        out.push_str(&format!("vin = \"{}\"\n", r.vin));
        out.push_str(&format!("category = \"{}\"\n", r.category));
        out.push_str(&format!("line = {}\n", string(&r.line)));
        if let Some(d) = r.delivered {
            out.push_str(&format!("delivered = {}\n", CivilDate::of(d)));
        }
        if let Some(d) = &r.dealer {
            out.push_str(&format!("dealer = {}\n", string(d)));
        }
        if let Some(g) = &r.region {
            out.push_str(&format!("region = {}\n", string(g)));
        }
        if let Some(d) = r.owner_since {
            out.push_str(&format!("owner_since = {}\n", CivilDate::of(d)));
        }
        if let Some(o) = &r.owner {
            out.push_str(&format!("owner = {}\n", string(o)));
        }
        out.push_str(&format!(
            "partner_sharing = {}\nengagement = {}\n\n",
            r.consents.partner_sharing, r.consents.engagement
        ));
    }
    out
}

#[cfg(test)]
mod tests;
