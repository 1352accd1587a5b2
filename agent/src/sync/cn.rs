//! The subject CN of the agent's own client certificate: the identity the broker (Mosquitto's
//! `use_identity_as_username`) and the cloud give the car, which must be its VIN.
//!
//! A minimal DER walk, on purpose: the head unit's static binary has a hard 4 MiB limit and a
//! margin of tens of KiB, and every X.509 crate that hands out the subject (`x509-parser`
//! with `der-parser`/`asn1-rs`/`nom`, or the `x509-cert`/`der` family) costs far more than
//! the ~80 lines here. `rustls-webpki`, already linked, hands out the subject only as raw
//! DER (`Cert::subject`), not its attributes: using it would mean a direct dependency kept in
//! step with rustls's and still this walk of the `Name`, to save the ~15 lines that reach it.
//! The walk reads only what it needs — `Certificate` →
//! `TBSCertificate` → skip `[0] version`, `serialNumber`, `signature`, `issuer`, `validity` →
//! `subject` → the first `commonName` (OID 2.5.4.3) — checks every declared length against
//! the bytes left before slicing, never allocates from a declared length, and answers
//! garbage with an error (proptested below; the `cert_cn` target in `agent/fuzz/`). It does
//! not verify the certificate: rustls and the broker do that; this only reads the name the
//! car presents.
//!
//! Owns: reading the CN. Does not own: which files are read or what a mismatch means
//! ([`super::tls`]).

/// What is wrong with the certificate's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CnError {
    /// The DER does not have the shape of an X.509 certificate at `what`.
    Malformed(&'static str),
    /// The subject has no commonName attribute.
    NoCn,
    /// The commonName is not text.
    NotText,
}

impl std::fmt::Display for CnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(what) => write!(f, "not a DER X.509 certificate (at its {what})"),
            Self::NoCn => f.write_str("its subject has no CN"),
            Self::NotText => f.write_str("its subject CN is not text"),
        }
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION: u8 = 0xa0;
/// 2.5.4.3, id-at-commonName, as DER content bytes.
const COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];

/// One DER element: its tag, its content and the bytes after it.
fn element<'a>(bytes: &'a [u8], what: &'static str) -> Result<(u8, &'a [u8], &'a [u8]), CnError> {
    let bad = CnError::Malformed(what);
    let (&tag, rest) = bytes.split_first().ok_or(bad.clone())?;
    let (&first, rest) = rest.split_first().ok_or(bad.clone())?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        // Long form: 1..=4 length bytes (a certificate is far below 4 GiB).
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err(bad);
        }
        let (len_bytes, rest) = rest.split_at(n);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return Err(bad);
    }
    let (content, after) = rest.split_at(len);
    Ok((tag, content, after))
}

/// An element that must have `tag`: its content and the bytes after it.
fn expect<'a>(
    bytes: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), CnError> {
    match element(bytes, what)? {
        (t, content, after) if t == tag => Ok((content, after)),
        _ => Err(CnError::Malformed(what)),
    }
}

/// The subject CN of a DER certificate.
///
/// # Errors
/// [`CnError`]: the bytes are not a certificate, or its subject has no text CN.
pub fn subject_cn(der: &[u8]) -> Result<String, CnError> {
    let (cert, _) = expect(der, SEQUENCE, "certificate")?;
    let (tbs, _) = expect(cert, SEQUENCE, "tbsCertificate")?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = element(rest, "version")?.2;
    }
    rest = element(rest, "serialNumber")?.2;
    rest = expect(rest, SEQUENCE, "signature")?.1;
    rest = expect(rest, SEQUENCE, "issuer")?.1;
    rest = expect(rest, SEQUENCE, "validity")?.1;
    let (mut rdns, _) = expect(rest, SEQUENCE, "subject")?;
    while !rdns.is_empty() {
        let (mut set, after) = expect(rdns, SET, "subject")?;
        rdns = after;
        while !set.is_empty() {
            let (attr, after) = expect(set, SEQUENCE, "subject")?;
            set = after;
            let (oid, value) = expect(attr, OID, "subject")?;
            if oid == COMMON_NAME {
                let (tag, text, _) = element(value, "subject")?;
                // UTF8String, PrintableString, IA5String, TeletexString (read as Latin-1 is
                // not needed: a VIN is ASCII; anything else is refused as not text).
                return match tag {
                    0x0c | 0x13 | 0x16 | 0x14 => std::str::from_utf8(text)
                        .map(str::to_owned)
                        .map_err(|_| CnError::NotText),
                    _ => Err(CnError::NotText),
                };
            }
        }
    }
    Err(CnError::NoCn)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// A certificate as rcgen writes it (the harness's PKI), subject CN `1HGCM82633A004352`.
    fn issued(cn: &str) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let ca = rapport_harness::pki::Ca::generate(dir.path(), "test ca").unwrap();
        let issued = ca.client(cn).unwrap();
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn reads_the_cn_of_a_real_certificate() {
        let der = issued("1HGCM82633A004352");
        assert_eq!(subject_cn(&der).unwrap(), "1HGCM82633A004352");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let der = issued("1HGCM82633A004352");
        for n in 0..der.len() {
            // A cut inside the subject or before it fails; after it the CN is already read.
            let _ = subject_cn(&der[..n]);
        }
        assert!(subject_cn(&der[..10]).is_err());
        assert_eq!(subject_cn(&[]), Err(CnError::Malformed("certificate")));
    }

    #[test]
    fn long_lengths_beyond_the_bytes_are_refused() {
        // SEQUENCE, long form 4 bytes: 0xffffffff, nothing behind it.
        let bytes = [0x30, 0x84, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(subject_cn(&bytes), Err(CnError::Malformed("certificate")));
        // Length of length 9 (too long).
        assert!(subject_cn(&[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]).is_err());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = subject_cn(&bytes);
        }

        #[test]
        fn a_flipped_byte_never_panics(pos in 0usize..400, byte in any::<u8>()) {
            static DER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
            let der = DER.get_or_init(|| issued("WVWZZZ1JZXW000001"));
            let mut bytes = der.clone();
            let at = pos % bytes.len();
            bytes[at] = byte;
            let _ = subject_cn(&bytes);
        }
    }
}
