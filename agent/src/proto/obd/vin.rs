//! OBD-II mode 09 PID 02: the vehicle identification number.
//!
//! Owns the decoding of `49 02 <count> <17 ASCII bytes>`. Does not own the shared wire `Vin`
//! type (`rapport_shared`), with which this one is to be reconciled, nor VIN check digits
//! (not every market uses them).

use core::fmt;

use super::{ObdError, positive_body};

/// A VIN as read over OBD-II: exactly 17 ASCII letters and digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vin([u8; 17]);

impl Vin {
    /// The VIN as text.
    pub fn as_str(&self) -> &str {
        // Built only from ASCII alphanumerics (see `parse_vin_response`).
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decodes a mode 09 PID 02 response: `49 02 <number of data items> <VIN>`. Leading and
/// trailing NUL bytes are dropped: older ECUs pad the VIN to whole 4-byte items.
///
/// # Errors
/// Anything [`super::positive_body`] rejects (empty, negative response, other SID),
/// [`ObdError::TooShort`] for a response without data, and [`ObdError::BadVin`] for another
/// PID or a VIN that is not 17 ASCII letters and digits.
pub fn parse_vin_response(payload: &[u8]) -> Result<Vin, ObdError> {
    let body = positive_body(payload, 0x09)?;
    let [pid, _count, vin @ ..] = body else {
        return Err(ObdError::TooShort {
            what: "mode 09 VIN response",
            len: payload.len(),
            needed: 3,
        });
    };
    if *pid != 0x02 {
        return Err(ObdError::BadVin("response is not for PID 0x02"));
    }
    let start = vin.iter().position(|b| *b != 0).unwrap_or(vin.len());
    let end = vin.iter().rposition(|b| *b != 0).map_or(start, |i| i + 1);
    let vin = vin.get(start..end).unwrap_or_default();
    let bytes: [u8; 17] = vin
        .try_into()
        .map_err(|_| ObdError::BadVin("not 17 characters long"))?;
    if !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return Err(ObdError::BadVin("characters other than letters and digits"));
    }
    Ok(Vin(bytes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn fleetwise_vin() {
        // VECTORS §1a: 49 = mode 09 positive, 02 = PID, 01 = one item, then 17 ASCII bytes
        let mut payload = vec![0x49, 0x02, 0x01];
        payload.extend_from_slice(b"1G1JC5444R7252367");
        assert_eq!(
            parse_vin_response(&payload).unwrap().as_str(),
            "1G1JC5444R7252367"
        );
        // `49 02` carries no VIN
        assert!(matches!(
            parse_vin_response(&[0x49, 0x02]),
            Err(ObdError::TooShort { .. })
        ));
    }

    #[test]
    fn python_obd_vin() {
        // VECTORS §1b: 02 01 then "WP0ZZZ99ZTS392124"
        let payload = [
            0x49, 0x02, 0x01, 0x57, 0x50, 0x30, 0x5A, 0x5A, 0x5A, 0x39, 0x39, 0x5A, 0x54, 0x53,
            0x33, 0x39, 0x32, 0x31, 0x32, 0x34,
        ];
        assert_eq!(
            parse_vin_response(&payload).unwrap().to_string(),
            "WP0ZZZ99ZTS392124"
        );
    }

    #[test]
    fn padded_and_bad_vins() {
        // pre-CAN style: three NULs pad the VIN to 20 bytes
        let mut payload = vec![0x49, 0x02, 0x05, 0, 0, 0];
        payload.extend_from_slice(b"WP0ZZZ99ZTS392124");
        assert_eq!(
            parse_vin_response(&payload).unwrap().as_str(),
            "WP0ZZZ99ZTS392124"
        );
        // 16 characters
        let mut short = vec![0x49, 0x02, 0x01];
        short.extend_from_slice(b"WP0ZZZ99ZTS39212");
        assert_eq!(
            parse_vin_response(&short),
            Err(ObdError::BadVin("not 17 characters long"))
        );
        // a space inside
        let mut spaced = vec![0x49, 0x02, 0x01];
        spaced.extend_from_slice(b"WP0ZZZ99 TS392124");
        assert!(matches!(
            parse_vin_response(&spaced),
            Err(ObdError::BadVin(_))
        ));
        // PID 04 (calibration id) is not a VIN
        let mut other = vec![0x49, 0x04, 0x01];
        other.extend_from_slice(b"WP0ZZZ99ZTS392124");
        assert!(matches!(
            parse_vin_response(&other),
            Err(ObdError::BadVin(_))
        ));
    }
}
