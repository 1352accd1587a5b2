//! Sans-IO protocol decoders: bytes (or frames) and the current time in, typed values out.
//! No sockets, no clocks, no tokio in here.

pub mod dbc;
pub mod isotp;
pub mod j1939;
pub(crate) mod obd;
pub(crate) mod uds;

/// For the decoders' property tests: a response payload that starts with one of `sids`, so
/// the walks past the header get exercised too, then `rest`.
#[cfg(test)]
pub(crate) fn sid_then(
    sids: Vec<u8>,
    rest: impl proptest::strategy::Strategy<Value = Vec<u8>>,
) -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::strategy::Strategy;
    (proptest::sample::select(sids), rest).prop_map(|(sid, rest)| {
        let mut p = vec![sid];
        p.extend(rest);
        p
    })
}
