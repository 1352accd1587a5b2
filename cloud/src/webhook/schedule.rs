//! The retry schedule and what an HTTP answer means for a delivery: pure, no I/O, the clock
//! and the random draw passed in.
//!
//! Owns the Standard Webhooks schedule ([`SCHEDULE`]: immediately, 5 s, 5 min, 30 min, 2 h,
//! 5 h, 10 h, 14 h, 20 h, 24 h), its ±20 % jitter, `Retry-After` parsing and honouring, and
//! the classification of an attempt ([`classify`], [`transport_failure`]) into a
//! [`Decision`]: delivered, retry at a time, or dead. Does not own storage
//! ([`super::outbox`]) or sending ([`super::sender`]).
//!
//! Status handling, after the spec: 2xx delivered; 410 Gone means the endpoint is gone (dead
//! letter at once, no further tries); everything else, 3xx (redirects are not followed), 429,
//! other 4xx, 5xx, timeouts and connection errors, is a failure retried on the schedule.

use std::time::Duration;

use rapport_shared::Timestamp;
use serde::{Deserialize, Serialize};

const S: u64 = 1;
const MIN: u64 = 60 * S;
const H: u64 = 60 * MIN;

/// The delay before each attempt, counted from the previous one: attempt 1 goes immediately,
/// attempt 2 five seconds after attempt 1, ..., attempt 10 a day after attempt 9.
pub const SCHEDULE: [Duration; 10] = [
    Duration::ZERO,
    Duration::from_secs(5 * S),
    Duration::from_secs(5 * MIN),
    Duration::from_secs(30 * MIN),
    Duration::from_secs(2 * H),
    Duration::from_secs(5 * H),
    Duration::from_secs(10 * H),
    Duration::from_secs(14 * H),
    Duration::from_secs(20 * H),
    Duration::from_secs(24 * H),
];

/// Attempts before a message is dead-lettered (the schedule's length).
pub const MAX_ATTEMPTS: u32 = SCHEDULE.len() as u32;

/// Jitter around each delay, in thousandths (±20 %).
pub const JITTER_PERMILLE: u64 = 200;

/// The longest wait a `Retry-After` can impose.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(24 * H);

/// The longest error text kept with a message (characters).
pub const MAX_ERROR_CHARS: usize = 300;

/// A uniform random draw that picks where in the jitter band a delay lands: `0` is −20 %,
/// `u32::MAX` is +20 %, [`Jitter::NONE`] the nominal delay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jitter(pub u32);

impl Jitter {
    /// No jitter: the nominal delay.
    pub const NONE: Self = Self(1 << 31);

    /// A draw from the OS generator ([`Jitter::NONE`] if it has none to give).
    pub fn random() -> Self {
        getrandom::u32().map_or(Self::NONE, Self)
    }

    /// `delay` moved within ±[`JITTER_PERMILLE`] by this draw; never below zero.
    pub fn apply(self, delay: Duration) -> Duration {
        let band = 2 * JITTER_PERMILLE + 1; // 401 steps: -200..=+200 per mille
        let step = (u64::from(self.0) * band) >> 32; // 0..=400
        let permille = 1000 - JITTER_PERMILLE + step; // 800..=1200
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(ms.saturating_mul(permille) / 1000)
    }
}

/// The wait before the next attempt once `attempts` attempts have failed, or `None` when
/// the schedule is spent (dead letter).
///
/// The delay is the schedule's, jittered; a `retry_after` asked by the partner is honoured
/// as a floor (wait at least that long), capped at [`RETRY_AFTER_CAP`]. `attempts` is 1 after
/// the first attempt; 0 asks for the first attempt itself (immediately).
pub fn after_attempt(
    attempts: u32,
    retry_after: Option<Duration>,
    jitter: Jitter,
) -> Option<Duration> {
    let nominal = SCHEDULE.get(usize::try_from(attempts).ok()?)?;
    let delay = jitter.apply(*nominal);
    Some(match retry_after {
        Some(asked) => delay.max(asked.min(RETRY_AFTER_CAP)),
        None => delay,
    })
}

/// Parses a `Retry-After` value (delay seconds, or an HTTP-date) into a wait from `now`.
/// A date in the past is a wait of zero; anything unreadable is `None` (ignored).
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: seconds; an absurdly long number saturates (and is capped later).
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())?;
    Some(Timestamp::from_millis(at_ms).saturating_since(now))
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered {
        /// The HTTP status.
        status: u16,
    },
    /// 410 Gone: the partner wants no more webhooks at this endpoint.
    Gone {
        /// The error text kept with the dead letter.
        error: String,
    },
    /// Anything else: retried on the schedule.
    Failed {
        /// What went wrong, for the outbox and the API.
        error: String,
        /// How long the partner asked us to wait, if it did.
        retry_after: Option<Duration>,
    },
}

/// An HTTP answer, as much of it as classification needs.
#[derive(Clone, Copy, Debug)]
pub struct Answer<'a> {
    /// The status code.
    pub status: u16,
    /// Its canonical reason phrase, if known (`Internal Server Error`).
    pub reason: Option<&'a str>,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<&'a str>,
    /// The start of the body (kept in the error text, shortened).
    pub body: &'a [u8],
}

/// Classifies an HTTP answer (see the module doc for the rules).
pub fn classify(answer: &Answer<'_>, now: Timestamp) -> Outcome {
    if (200..300).contains(&answer.status) {
        return Outcome::Delivered {
            status: answer.status,
        };
    }
    let mut error = format!("HTTP {}", answer.status);
    if let Some(reason) = answer.reason {
        error.push(' ');
        error.push_str(reason);
    }
    let body = String::from_utf8_lossy(answer.body);
    let body = body.trim();
    if !body.is_empty() {
        error.push_str(": ");
        error.push_str(body);
    }
    let error = clean_error(&error);
    if answer.status == 410 {
        return Outcome::Gone { error };
    }
    Outcome::Failed {
        error,
        retry_after: answer.retry_after.and_then(|v| parse_retry_after(v, now)),
    }
}

/// A failure without an HTTP answer (timeout, refused connection, bad URL, unknown partner).
pub fn transport_failure(error: impl std::fmt::Display) -> Outcome {
    Outcome::Failed {
        error: clean_error(&error.to_string()),
        retry_after: None,
    }
}

/// Error text fit to store and show: control characters blanked, at most
/// [`MAX_ERROR_CHARS`] characters (an ellipsis marks a cut).
pub fn clean_error(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_CHARS + 1)
        .collect();
    if out.chars().count() > MAX_ERROR_CHARS {
        out = out.chars().take(MAX_ERROR_CHARS - 1).collect();
        out.push('…');
    }
    out
}

/// Why a message was dead-lettered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum DeadReason {
    /// The partner answered 410 Gone.
    Gone,
    /// Every attempt of the schedule failed.
    Exhausted,
}

impl std::fmt::Display for DeadReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Gone => "endpoint gone",
            Self::Exhausted => "retries exhausted",
        })
    }
}

/// What to do with a message after an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Delivered: remove from pending, keep a delivered marker.
    Delivered {
        /// The HTTP status.
        status: u16,
    },
    /// Try again at `at`.
    Retry {
        /// When.
        at: Timestamp,
        /// The failure's text.
        error: String,
    },
    /// Give up: move to the dead letters.
    Dead {
        /// Why.
        reason: DeadReason,
        /// The last failure's text.
        error: String,
    },
}

/// The decision after attempt number `attempts` (1 for the first) made at `now` came to
/// `outcome`.
pub fn decide(attempts: u32, outcome: Outcome, jitter: Jitter, now: Timestamp) -> Decision {
    match outcome {
        Outcome::Delivered { status } => Decision::Delivered { status },
        Outcome::Gone { error } => Decision::Dead {
            reason: DeadReason::Gone,
            error,
        },
        Outcome::Failed { error, retry_after } => {
            match after_attempt(attempts, retry_after, jitter) {
                Some(wait) => Decision::Retry {
                    at: now.saturating_add(wait),
                    error,
                },
                None => Decision::Dead {
                    reason: DeadReason::Exhausted,
                    error,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const T0: Timestamp = Timestamp::from_secs(1_700_000_000);

    fn answer(status: u16) -> Answer<'static> {
        Answer {
            status,
            reason: None,
            retry_after: None,
            body: b"",
        }
    }

    #[test]
    fn nominal_schedule_is_the_specs() {
        let secs: Vec<u64> = (0..MAX_ATTEMPTS)
            .map(|n| after_attempt(n, None, Jitter::NONE).unwrap().as_secs())
            .collect();
        assert_eq!(
            secs,
            [
                0, 5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400
            ]
        );
        // Time since the first attempt of the last one: 75:35:05, as the spec's table says.
        let total: u64 = secs.iter().sum();
        assert_eq!(total, 75 * 3600 + 35 * 60 + 5);
        assert_eq!(after_attempt(MAX_ATTEMPTS, None, Jitter::NONE), None);
        assert_eq!(
            after_attempt(u32::MAX, Some(Duration::from_secs(1)), Jitter::NONE),
            None
        );
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_spans_the_band() {
        let d = Duration::from_secs(300);
        assert_eq!(Jitter(0).apply(d), Duration::from_secs(240));
        assert_eq!(Jitter(u32::MAX).apply(d), Duration::from_secs(360));
        assert_eq!(Jitter::NONE.apply(d), d);
        assert_eq!(Jitter(0).apply(Duration::ZERO), Duration::ZERO);
        // The first attempt is immediate whatever the draw.
        assert_eq!(
            after_attempt(0, None, Jitter(u32::MAX)),
            Some(Duration::ZERO)
        );
        for j in [1u32, 12_345, 1 << 20, 3_000_000_000, u32::MAX - 1] {
            let got = Jitter(j).apply(d);
            assert!(
                got >= Duration::from_secs(240) && got <= Duration::from_secs(360),
                "{got:?}"
            );
        }
        let draws: std::collections::HashSet<_> =
            (0..50).map(|_| Jitter::random().apply(d)).collect();
        assert!(draws.len() > 1, "random jitter gave one value 50 times");
    }

    #[test]
    fn retry_after_is_a_floor_capped_at_a_day() {
        // After attempt 1 the schedule says 5 s; the partner asks 120 s: 120 s it is.
        assert_eq!(
            after_attempt(1, Some(Duration::from_secs(120)), Jitter(u32::MAX)),
            Some(Duration::from_secs(120))
        );
        // Asking less than the schedule changes nothing.
        assert_eq!(
            after_attempt(3, Some(Duration::from_secs(1)), Jitter::NONE),
            Some(Duration::from_secs(1800))
        );
        // A week is cut to a day.
        assert_eq!(
            after_attempt(1, Some(Duration::from_secs(7 * 86_400)), Jitter::NONE),
            Some(RETRY_AFTER_CAP)
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("120", T0), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", T0), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", T0),
            Some(Duration::from_secs(u64::MAX))
        );
        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            parse_retry_after("Tue, 14 Nov 2023 22:15:20 GMT", T0),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", T0),
            Some(Duration::ZERO)
        );
        for bad in ["", "-5", "1.5", "soon", "Tue, 99 Nov 2023 22:15:20 GMT"] {
            assert_eq!(parse_retry_after(bad, T0), None, "{bad:?}");
        }
    }

    #[test]
    fn classification_follows_the_spec() {
        for s in [200, 201, 204, 299] {
            assert_eq!(classify(&answer(s), T0), Outcome::Delivered { status: s });
        }
        assert!(matches!(classify(&answer(410), T0), Outcome::Gone { .. }));
        for s in [301, 302, 400, 401, 404, 429, 500, 502, 503, 504] {
            assert!(
                matches!(
                    classify(&answer(s), T0),
                    Outcome::Failed {
                        retry_after: None,
                        ..
                    }
                ),
                "{s}"
            );
        }
        let a = Answer {
            status: 503,
            reason: Some("Service Unavailable"),
            retry_after: Some("30"),
            body: b"busy\r\nnow",
        };
        assert_eq!(
            classify(&a, T0),
            Outcome::Failed {
                error: "HTTP 503 Service Unavailable: busy  now".into(),
                retry_after: Some(Duration::from_secs(30)),
            }
        );
    }

    #[test]
    fn decisions_keep_the_error_and_give_up_after_the_last_attempt() {
        let fail = || transport_failure("connection refused");
        assert_eq!(
            decide(1, fail(), Jitter::NONE, T0),
            Decision::Retry {
                at: T0.saturating_add(Duration::from_secs(5)),
                error: "connection refused".into()
            }
        );
        assert_eq!(
            decide(9, fail(), Jitter::NONE, T0),
            Decision::Retry {
                at: T0.saturating_add(Duration::from_secs(86_400)),
                error: "connection refused".into()
            }
        );
        assert_eq!(
            decide(10, fail(), Jitter::NONE, T0),
            Decision::Dead {
                reason: DeadReason::Exhausted,
                error: "connection refused".into()
            }
        );
        assert!(matches!(
            decide(1, classify(&answer(410), T0), Jitter::NONE, T0),
            Decision::Dead {
                reason: DeadReason::Gone,
                ..
            }
        ));
        assert_eq!(
            decide(4, classify(&answer(204), T0), Jitter::NONE, T0),
            Decision::Delivered { status: 204 }
        );
    }

    #[test]
    fn long_errors_are_cut() {
        let e = clean_error(&"x".repeat(1000));
        assert_eq!(e.chars().count(), MAX_ERROR_CHARS);
        assert!(e.ends_with('…'));
        assert_eq!(clean_error("short"), "short");
    }
}
