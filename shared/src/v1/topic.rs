//! MQTT topics: `rapport/v1/{vin}/up` (car → cloud) and `rapport/v1/{vin}/down` (cloud → car),
//! built and parsed here and nowhere else.

use crate::{Vin, WireError};

/// Every topic starts with this.
pub const PREFIX: &str = "rapport/v1/";
/// The filter matching every vehicle's uplink.
pub const UPLINK_FILTER: &str = "rapport/v1/+/up";

/// Which way a topic carries messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Car to cloud.
    Up,
    /// Cloud to car.
    Down,
}

/// The uplink topic of a vehicle.
pub fn uplink(vin: &Vin) -> String {
    format!("{PREFIX}{vin}/up")
}

/// The downlink topic of a vehicle.
pub fn downlink(vin: &Vin) -> String {
    format!("{PREFIX}{vin}/down")
}

/// The shared-subscription filter that spreads all uplinks over a group of cloud instances.
pub fn shared_uplink_filter(group: &str) -> String {
    format!("$share/{group}/{UPLINK_FILTER}")
}

/// Parses a topic name into its vehicle and direction.
///
/// # Errors
/// [`WireError::Topic`] if it is not exactly `rapport/v1/{vin}/up` or `…/down` with a valid VIN.
pub fn parse(topic: &str) -> Result<(Vin, Direction), WireError> {
    let bad = |reason: String| WireError::Topic {
        topic: topic.chars().take(128).collect(),
        reason,
    };
    let rest = topic
        .strip_prefix(PREFIX)
        .ok_or_else(|| bad(format!("does not start with {PREFIX:?}")))?;
    let (vin, dir) = rest
        .split_once('/')
        .ok_or_else(|| bad("no direction after the VIN".into()))?;
    let dir = match dir {
        "up" => Direction::Up,
        "down" => Direction::Down,
        other => return Err(bad(format!("direction {other:?} is neither up nor down"))),
    };
    let vin = vin.parse::<Vin>().map_err(|e| bad(e.to_string()))?;
    Ok((vin, dir))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn build_and_parse() {
        let vin: Vin = "WP0ZZZ99ZTS392124".parse().unwrap();
        assert_eq!(uplink(&vin), "rapport/v1/WP0ZZZ99ZTS392124/up");
        assert_eq!(downlink(&vin), "rapport/v1/WP0ZZZ99ZTS392124/down");
        assert_eq!(parse(&uplink(&vin)).unwrap(), (vin, Direction::Up));
        assert_eq!(parse(&downlink(&vin)).unwrap(), (vin, Direction::Down));
        assert_eq!(
            shared_uplink_filter("cloud"),
            "$share/cloud/rapport/v1/+/up"
        );
    }

    #[test]
    fn refuses_bad_topics() {
        for t in [
            "",
            "rapport/v1/",
            "rapport/v2/WP0ZZZ99ZTS392124/up",
            "rapport/v1/WP0ZZZ99ZTS392124",
            "rapport/v1/WP0ZZZ99ZTS392124/up/extra",
            "rapport/v1/WP0ZZZ99ZTS39212/up",
            "rapport/v1/+/up",
            "rapport/v1/WP0ZZZ99ZTS392124/sideways",
        ] {
            assert!(parse(t).is_err(), "{t:?} accepted");
        }
    }
}
