//! Parsing one candump line, log or screen form, into a [`Line`]: the cursor, the timestamp
//! forms, ids and data. Owns no I/O; [`super::reader`] feeds it lines.

use rapport_shared::hex;

use super::*;

/// Parses one line of a candump trace (log or screen form; a trailing newline is ignored).
///
/// # Errors
/// [`ParseError`] with the column where the line stops being a candump line.
pub fn parse_line(line: &[u8]) -> Result<Line, ParseError> {
    let mut c = Cursor::new(trim_end(line));
    c.skip_ws();
    if c.at_end() {
        return Ok(Line::Skip(Skip::Blank));
    }
    let timestamp = if c.peek() == Some(b'(') {
        Some(parse_timestamp(&mut c)?)
    } else {
        None
    };
    c.skip_ws();
    let (icol, name) = c.token();
    if name.is_empty() || name.contains(&b'#') {
        return Err(err(icol, ParseErrorKind::MissingInterface));
    }
    let interface = Interface::from_bytes(name).ok_or(err(icol, ParseErrorKind::BadInterface))?;
    c.skip_ws();
    let (fcol, token) = c.token();
    let parsed = match token {
        b"" => return Err(err(fcol, ParseErrorKind::MissingFrame)),
        b"ERROR" | b"ERRORFRAME" => return Ok(Line::Skip(Skip::ErrorFrame)),
        _ if token.contains(&b'#') => {
            let parsed = parse_log_frame(token, fcol)?;
            // Some recorders append a direction column (`R`/`T`); it carries nothing we keep.
            c.skip_ws();
            let (col, extra) = c.token();
            if !matches!(extra, b"" | b"R" | b"T") {
                return Err(err(col, ParseErrorKind::TrailingText));
            }
            c.skip_ws();
            if !c.at_end() {
                return Err(err(c.col(), ParseErrorKind::TrailingText));
            }
            parsed
        }
        _ => parse_screen_frame(&mut c, fcol, token)?,
    };
    Ok(match parsed {
        Some(frame) => Line::Frame(TraceFrame {
            timestamp,
            interface,
            frame,
        }),
        None => Line::Skip(Skip::ErrorFrame),
    })
}

pub(super) fn err(column: usize, kind: ParseErrorKind) -> ParseError {
    ParseError { column, kind }
}

fn trim_end(line: &[u8]) -> &[u8] {
    let end = line
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    line.get(..end).unwrap_or_default()
}

/// A byte cursor that knows its column, for error positions.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a [u8]) -> Self {
        Self { s, i: 0 }
    }

    fn col(&self) -> usize {
        self.i + 1
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn at_end(&self) -> bool {
        self.i >= self.s.len()
    }

    fn rest(&self) -> &'a [u8] {
        self.s.get(self.i..).unwrap_or_default()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    /// The next run of non-blank bytes and its column (empty at the end of the line).
    fn token(&mut self) -> (usize, &'a [u8]) {
        let start = self.i;
        while matches!(self.peek(), Some(b) if b != b' ' && b != b'\t') {
            self.i += 1;
        }
        (start + 1, self.s.get(start..self.i).unwrap_or_default())
    }
}

fn parse_timestamp(c: &mut Cursor<'_>) -> Result<Timestamp, ParseError> {
    let open = c.col();
    let rest = c.rest();
    let close = rest
        .iter()
        .position(|&b| b == b')')
        .ok_or(err(open, ParseErrorKind::UnclosedTimestamp))?;
    let inner = rest.get(1..close).unwrap_or_default();
    c.i += close + 1;
    let bad = || err(open + 1, ParseErrorKind::BadTimestamp);
    if inner.contains(&b'-') {
        return parse_date_time(inner)
            .map(Timestamp::Absolute)
            .ok_or_else(bad);
    }
    let dot = inner.iter().position(|&b| b == b'.').ok_or_else(bad)?;
    let (secs, frac) = (inner.get(..dot).unwrap_or_default(), inner.get(dot + 1..));
    let frac = frac.unwrap_or_default();
    // 12 digits of seconds is past the year 33000 and keeps the arithmetic far from overflow.
    if secs.is_empty() || secs.len() > 12 {
        return Err(bad());
    }
    let seconds = parse_decimal(secs).ok_or_else(bad)?;
    let nanos = parse_fraction(frac).ok_or_else(bad)?;
    let d = Duration::new(seconds, nanos);
    Ok(if secs.len() >= 10 {
        Timestamp::Absolute(d)
    } else {
        Timestamp::Relative(d)
    })
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// 1–9 digits after the decimal point, as nanoseconds.
fn parse_fraction(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let value = u32::try_from(parse_decimal(digits)?).ok()?;
    let scale = 10u32.checked_pow(u32::try_from(9 - digits.len()).ok()?)?;
    value.checked_mul(scale)
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` (`candump -t A`). candump prints local time and the line does
/// not say which zone, so it is taken as UTC: order and spacing stay right, except across a
/// daylight-saving change.
fn parse_date_time(s: &[u8]) -> Option<Duration> {
    let field = |from: usize, to: usize| parse_decimal(s.get(from..to)?);
    let sep_ok = s.get(4) == Some(&b'-')
        && s.get(7) == Some(&b'-')
        && s.get(10) == Some(&b' ')
        && s.get(13) == Some(&b':')
        && s.get(16) == Some(&b':')
        && s.get(19) == Some(&b'.');
    if !sep_ok {
        return None;
    }
    let (year, month, day) = (field(0, 4)?, field(5, 7)?, field(8, 10)?);
    let (hour, minute, second) = (field(11, 13)?, field(14, 16)?, field(17, 19)?);
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let nanos = parse_fraction(s.get(20..)?)?;
    // In range (checked above): the conversions cannot fail, and 1970 on is day 0 or later.
    let days = rapport_shared::calendar::days_from_civil(
        i64::try_from(year).ok()?,
        u8::try_from(month).ok()?,
        u8::try_from(day).ok()?,
    );
    let secs = u64::try_from(days).ok()? * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(Duration::new(secs, nanos))
}

/// An id field: 3 hex digits for 11-bit, 8 for 29-bit. `Ok(None)` for an error-frame id.
fn parse_id(digits: &[u8], col: usize) -> Result<Option<(u32, bool)>, ParseError> {
    let extended = match digits.len() {
        3 => false,
        8 => true,
        n => return Err(err(col, ParseErrorKind::BadIdLength { digits: n })),
    };
    let mut id = 0u32;
    for (k, &b) in digits.iter().enumerate() {
        let v = hex::digit(b).ok_or(err(
            col + k,
            ParseErrorKind::BadHex {
                found: char::from(b),
            },
        ))?;
        id = (id << 4) | u32::from(v);
    }
    if extended && id & CAN_ERR_FLAG != 0 {
        return Ok(None);
    }
    if extended && id > 0x1FFF_FFFF {
        return Err(err(col, ParseErrorKind::IdOutOfRange { id }));
    }
    Ok(Some((id, extended)))
}

/// `ID#data`, `ID#R[dlc]`, `ID##<flags><data>`; `Ok(None)` for an error frame.
fn parse_log_frame(token: &[u8], col: usize) -> Result<Option<CanFrame>, ParseError> {
    let hash = token.iter().position(|&b| b == b'#').unwrap_or(token.len());
    let Some((raw, extended)) = parse_id(token.get(..hash).unwrap_or_default(), col)? else {
        return Ok(None);
    };
    let id = raw_to_id(raw, extended).ok_or(err(col, ParseErrorKind::IdOutOfRange { id: raw }))?;
    let mut at = hash + 1;
    let rest = token.get(at..).unwrap_or_default();
    match rest.first() {
        Some(b'R' | b'r') => {
            let dlc = match rest.get(1..).unwrap_or_default() {
                [] => 0,
                [d] if (b'0'..=b'8').contains(d) => usize::from(d - b'0'),
                _ => return Err(err(col + at + 1, ParseErrorKind::BadRemoteDlc)),
            };
            let frame = CanFrame::new_remote(id, dlc)
                .ok_or(err(col + at + 1, ParseErrorKind::BadRemoteDlc))?;
            return Ok(Some(frame));
        }
        Some(b'#') => {
            let flags_at = at + 1;
            let flags = match token.get(flags_at) {
                Some(&b) => hex::digit(b).ok_or(err(
                    col + flags_at,
                    ParseErrorKind::BadHex {
                        found: char::from(b),
                    },
                ))?,
                None => {
                    return Err(err(col + flags_at, ParseErrorKind::BadHex { found: ' ' }));
                }
            };
            at = flags_at + 1;
            let mut data = [0u8; 64];
            let len = parse_hex_data(token, at, col, &mut data, 64)?;
            let bytes = data.get(..len).unwrap_or_default();
            let frame = CanFrame::new_fd(id, bytes, flags & 1 != 0)
                .ok_or(err(col + at, ParseErrorKind::BadLength { len, fd: true }))?;
            return Ok(Some(frame.with_esi(flags & 2 != 0)));
        }
        _ => {}
    }
    let mut data = [0u8; 8];
    // A classic frame may end in `_<dlc>` (len8_dlc: a raw DLC of 9–F on an 8-byte frame);
    // the frame type keeps the data only, so the raw DLC is checked and dropped.
    let (body_end, dlc_suffix) = match token.iter().rposition(|&b| b == b'_') {
        Some(u) if u > at => (u, token.get(u + 1..)),
        _ => (token.len(), None),
    };
    let body = token.get(..body_end).unwrap_or_default();
    let len = parse_hex_data(body, at, col, &mut data, 8)?;
    if let Some(suffix) = dlc_suffix {
        let ok = len == 8 && matches!(suffix, [d] if hex::digit(*d).is_some_and(|v| v > 8));
        if !ok {
            return Err(err(col + body_end, ParseErrorKind::TrailingText));
        }
    }
    let bytes = data.get(..len).unwrap_or_default();
    let frame =
        CanFrame::new(id, bytes).ok_or(err(col, ParseErrorKind::BadLength { len, fd: false }))?;
    Ok(Some(frame))
}

/// Hex pairs from `s[at..]`, optionally separated by `.`, into `out`; returns the count.
fn parse_hex_data(
    s: &[u8],
    mut at: usize,
    col: usize,
    out: &mut [u8],
    max: usize,
) -> Result<usize, ParseError> {
    let mut n = 0;
    while at < s.len() {
        if s.get(at) == Some(&b'.') {
            at += 1;
            continue;
        }
        let hi = s.get(at).copied().unwrap_or(b' ');
        let Some(lo) = s.get(at + 1).copied() else {
            return Err(err(col + at, ParseErrorKind::OddHexDigits));
        };
        let h = hex::digit(hi).ok_or(err(
            col + at,
            ParseErrorKind::BadHex {
                found: char::from(hi),
            },
        ))?;
        let l = hex::digit(lo).ok_or(err(
            col + at + 1,
            ParseErrorKind::BadHex {
                found: char::from(lo),
            },
        ))?;
        let slot = out
            .get_mut(n)
            .filter(|_| n < max)
            .ok_or(err(col + at, ParseErrorKind::TooManyBytes { max }))?;
        *slot = (h << 4) | l;
        n += 1;
        at += 2;
    }
    Ok(n)
}

/// The screen form after the interface: `[RX|TX B|- E|-]  ID  [n]  AA BB … ['ascii'|ERRORFRAME]`.
/// `token` is the first field after the interface, at column `col`.
fn parse_screen_frame<'a>(
    c: &mut Cursor<'a>,
    mut col: usize,
    mut token: &'a [u8],
) -> Result<Option<CanFrame>, ParseError> {
    let (mut brs, mut esi) = (false, false);
    if matches!(token, b"RX" | b"TX") {
        // `candump -x`: direction, then the BRS and ESI columns (`B`/`-`, `E`/`-`).
        c.skip_ws();
        brs = c.token().1 == b"B";
        c.skip_ws();
        esi = c.token().1 == b"E";
        c.skip_ws();
        (col, token) = c.token();
    }
    let id = parse_id(token, col)?;
    c.skip_ws();
    let (lcol, len_tok) = c.token();
    let (declared, fd) = match len_tok {
        [b'[', d, b']'] if d.is_ascii_digit() => (usize::from(d - b'0'), false),
        // can-utils prints CAN FD lengths as `[%02d]` and classic ones as `[%d]`.
        [b'[', d1, d2, b']'] if d1.is_ascii_digit() && d2.is_ascii_digit() => {
            (usize::from(d1 - b'0') * 10 + usize::from(d2 - b'0'), true)
        }
        _ => return Err(err(lcol, ParseErrorKind::MissingLength)),
    };
    let Some((raw, extended)) = id else {
        return Ok(None);
    };
    let id = raw_to_id(raw, extended).ok_or(err(col, ParseErrorKind::IdOutOfRange { id: raw }))?;
    let valid = if fd {
        FD_LENGTHS.contains(&declared)
    } else {
        declared <= 8
    };
    if !valid {
        return Err(err(lcol, ParseErrorKind::BadLength { len: declared, fd }));
    }
    c.skip_ws();
    if !fd && c.rest().starts_with(b"remote request") {
        c.i += b"remote request".len();
        c.skip_ws();
        if !c.at_end() {
            return Err(err(c.col(), ParseErrorKind::TrailingText));
        }
        return Ok(CanFrame::new_remote(id, declared));
    }
    let mut data = [0u8; 64];
    for (n, slot) in data.iter_mut().take(declared).enumerate() {
        c.skip_ws();
        let (bcol, byte) = c.token();
        let mismatch = err(bcol, ParseErrorKind::LengthMismatch { declared, found: n });
        let [hi, lo] = byte else {
            return Err(if byte.is_empty() || byte.starts_with(b"'") {
                mismatch
            } else {
                err(
                    bcol,
                    ParseErrorKind::BadHex {
                        found: char::from(byte.first().copied().unwrap_or(b' ')),
                    },
                )
            });
        };
        let h = hex::digit(*hi).ok_or(err(
            bcol,
            ParseErrorKind::BadHex {
                found: char::from(*hi),
            },
        ))?;
        let l = hex::digit(*lo).ok_or(err(
            bcol + 1,
            ParseErrorKind::BadHex {
                found: char::from(*lo),
            },
        ))?;
        *slot = (h << 4) | l;
    }
    c.skip_ws();
    let tail = c.rest();
    if tail.starts_with(b"ERRORFRAME") {
        return Ok(None);
    }
    if !tail.is_empty() && !tail.starts_with(b"'") && !tail.starts_with(b"`") {
        let (tcol, t) = c.token();
        let kind = if t.len() == 2 && t.iter().all(|b| hex::digit(*b).is_some()) {
            ParseErrorKind::LengthMismatch {
                declared,
                found: declared + 1,
            }
        } else {
            ParseErrorKind::TrailingText
        };
        return Err(err(tcol, kind));
    }
    let bytes = data.get(..declared).unwrap_or_default();
    let frame = if fd {
        CanFrame::new_fd(id, bytes, brs).map(|f| f.with_esi(esi))
    } else {
        CanFrame::new(id, bytes)
    };
    frame
        .map(Some)
        .ok_or(err(lcol, ParseErrorKind::BadLength { len: declared, fd }))
}
