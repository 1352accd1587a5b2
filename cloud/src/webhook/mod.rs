//! Partner webhooks, delivered per the Standard Webhooks spec: signed, retried on the
//! spec's schedule with jitter, kept in a durable outbox until a 2xx, parked in a
//! re-drivable dead-letter list after the last try, one message id for one alert whatever
//! the retries or restarts.
//!
//! - [`sign`]: `whsec_` secrets and `v1` HMAC-SHA256 signatures;
//! - [`schedule`]: the retry schedule, `Retry-After`, what an answer means (pure);
//! - [`outbox`]: pending messages, due index, dead letters, delivered markers (sled);
//! - [`sender`]: the async shell that POSTs due messages and records the outcome.
//!
//! Does not own what an alert says (the body is the caller's JSON, fixed at enqueue), which
//! partner gets it, or where partners' URLs and secrets are configured ([`Endpoints`]).
//!
//! Use: enqueue a [`Message`] in the same sled batch that records the alert
//! ([`Outbox::enqueue`]), apply it, call `notify_one()` on [`Sender::waker`]; read
//! [`DeliveryReport`]s from the channel given to [`Sender::run`].

pub mod outbox;
pub mod schedule;
pub mod sender;
pub mod sign;

pub use outbox::{DeadLetter, Delivered, Due, Enqueue, Message, MessageState, Outbox, OutboxError};
pub use schedule::{DeadReason, Decision, Jitter, Outcome};
pub use sender::{
    Counters, DeliveryReport, Endpoint, Endpoints, PartnerCounts, ReportStatus, Sender,
    SenderConfig, SenderError,
};
pub use sign::{Secret, SecretError, sign, verify};

/// Everything the webhook module can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// A secret that cannot be used.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// The outbox failed or refused a message.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The sender could not be built.
    #[error(transparent)]
    Sender(#[from] SenderError),
}
