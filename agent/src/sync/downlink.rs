//! What the sync does with a message on the vehicle's downlink topic, decided before anything
//! is applied: decode it (size-limited, never trusted), check that it is for this car. Pure.
//!
//! A message that fails is rejected — warned about, counted, and still acknowledged, so the
//! broker does not redeliver it forever. Does not own: applying (the rules, through
//! [`super::Agent::downlink`]) or acknowledging (the shell).

use rapport_shared::v1::downlink::Downlink;
use rapport_shared::v1::topic;
use rapport_shared::{MAX_DOWNLINK_BYTES, Vin};

/// Why a downlink was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Rejected {
    /// Not this car's downlink topic.
    #[error("message on {0:?}, not this car's downlink topic")]
    Topic(String),
    /// The payload does not decode.
    #[error("undecodable downlink: {0}")]
    Decode(rapport_shared::WireError),
    /// The envelope names another car.
    #[error("downlink for VIN {found}, not this car ({ours})")]
    Vin {
        /// The VIN in the envelope.
        found: Vin,
        /// This car's.
        ours: Vin,
    },
}

/// Checks a message received on `topic_name`.
///
/// # Errors
/// [`Rejected`] saying why it must not be applied.
pub(crate) fn check(topic_name: &str, payload: &[u8], ours: &Vin) -> Result<Downlink, Rejected> {
    if topic_name != topic::downlink(ours) {
        return Err(Rejected::Topic(topic_name.chars().take(128).collect()));
    }
    // Downlink::decode checks the size first; repeat the bound here so the rule is visible.
    if payload.len() > MAX_DOWNLINK_BYTES {
        return Err(Rejected::Decode(rapport_shared::WireError::TooLarge {
            len: payload.len(),
            max: MAX_DOWNLINK_BYTES,
        }));
    }
    let downlink = Downlink::decode(payload).map_err(Rejected::Decode)?;
    if &downlink.vin != ours {
        return Err(Rejected::Vin {
            found: downlink.vin,
            ours: *ours,
        });
    }
    Ok(downlink)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use rapport_shared::Timestamp;
    use rapport_shared::v1::downlink::{BookingConfirmed, DownlinkBody, DownlinkMessage};

    fn vin(s: &str) -> Vin {
        s.parse().unwrap()
    }

    fn payload(for_vin: &Vin) -> Vec<u8> {
        Downlink {
            vin: *for_vin,
            messages: vec![DownlinkMessage {
                id: 42,
                at: Timestamp::from_millis(1_700_000_000_000),
                body: DownlinkBody::BookingConfirmed(BookingConfirmed {
                    prompt: "maintenance:oil:20000".into(),
                    item: Some("oil".into()),
                    partner: "Garage".into(),
                    appointment: Timestamp::from_millis(1_700_100_000_000),
                    location: "Main St".into(),
                }),
            }],
        }
        .encode()
        .unwrap()
    }

    #[test]
    fn accepts_its_own_and_refuses_the_rest() {
        let ours = vin("WVWZZZ1KZ8W012345");
        let other = vin("WP0ZZZ99ZTS392124");
        let topic_ours = topic::downlink(&ours);
        let ok = check(&topic_ours, &payload(&ours), &ours).unwrap();
        assert_eq!(ok.messages[0].id, 42);
        assert!(matches!(
            check(&topic_ours, &payload(&other), &ours),
            Err(Rejected::Vin { .. })
        ));
        assert!(matches!(
            check(&topic::downlink(&other), &payload(&ours), &ours),
            Err(Rejected::Topic(_))
        ));
        assert!(matches!(
            check(&topic_ours, b"", &ours),
            Err(Rejected::Decode(_))
        ));
        let huge = vec![1u8; MAX_DOWNLINK_BYTES + 1];
        assert!(matches!(
            check(&topic_ours, &huge, &ours),
            Err(Rejected::Decode(rapport_shared::WireError::TooLarge { .. }))
        ));
    }

    proptest! {
        #[test]
        fn garbage_is_refused_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let ours = vin("WVWZZZ1KZ8W012345");
            let _ = check(&topic::downlink(&ours), &bytes, &ours);
        }
    }
}
