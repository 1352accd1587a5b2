//! A fleet test bed: one cloud in this process on a manual clock, with its embedded broker, a
//! car publisher, and partners whose webhook receivers verify signatures on the same clock —
//! what the fleet's, the reads' and the dashboard's tests each used to build for themselves.
//!
//! Owns the bed's wiring and its small verbs (send records stamped now, move the clock and
//! tick, call the API). Does not own any test's data or assertions.

use std::collections::BTreeMap;
use std::time::Duration;

use rapport_cloud::Cloud;
use rapport_cloud::clock::{Clock, ManualClock};
use rapport_cloud::config::Config;
use rapport_cloud::fleet::partners::AlertsConfig;
use rapport_shared::{Record, RecordBody, Timestamp, Uplink, Vin};
use serde_json::Value;

use crate::Error;
use crate::cloud::{self, BrokerKind, partner, receiver_clock, send_and_wait};
use crate::mqtt::Publisher;
use crate::partner::Receiver;
use crate::records::Sequencer;

/// A day, ms.
pub const DAY_MS: u64 = 86_400_000;
/// A minute, ms.
pub const MINUTE_MS: u64 = 60_000;

/// A partner of the bed: its id, webhook signing secret and API token.
#[derive(Clone, Copy, Debug)]
pub struct Partner {
    /// Its id (`dealer-north`).
    pub id: &'static str,
    /// Its `whsec_` secret.
    pub secret: &'static str,
    /// Its API token, if it has one.
    pub token: Option<&'static str>,
}

/// What a bed is made of.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The ingest session's client id, and the prefix of the bed's other names.
    pub name: String,
    /// The cloud's clock at the start.
    pub t0: Timestamp,
    /// The partners, each with a receiver.
    pub partners: Vec<Partner>,
    /// The partner alerts escalate to.
    pub fallback: Option<&'static str>,
}

/// A running bed.
pub struct Bed {
    /// The cloud.
    pub cloud: Cloud,
    /// Its clock.
    pub clock: ManualClock,
    /// `http://` and the API's address.
    pub base: String,
    /// The cars' MQTT publisher.
    pub car: Publisher,
    /// Sequence numbers per VIN for [`Bed::send`].
    pub seq: Sequencer,
    /// Each partner's receiver, by id.
    pub receivers: BTreeMap<&'static str, Receiver>,
    _dir: tempfile::TempDir,
}

impl Bed {
    /// Starts a cloud after `tweak` had its say on the config (the API's operator token is
    /// [`cloud::OPERATOR`] unless `tweak` sets another). The background tick is slowed to an
    /// hour: the test moves time and ticks itself, deterministically.
    ///
    /// # Errors
    /// The receivers, the config or the cloud failing to start.
    pub async fn start(plan: Plan, tweak: impl FnOnce(&mut Config)) -> Result<Self, Error> {
        let dir = crate::files::temp_dir(&plan.name, "the bed's store")?;
        let clock = ManualClock::new(plan.t0);
        let mut config = cloud::config(dir.path(), BrokerKind::Embedded, &plan.name)?;
        let mut receivers = BTreeMap::new();
        for p in &plan.partners {
            let r = Receiver::start(p.secret, receiver_clock(&clock)).await?;
            config
                .partner
                .push(partner(p.id, r.url(), p.secret, p.token));
            receivers.insert(p.id, r);
        }
        config.alerts = AlertsConfig {
            fallback: plan.fallback.map(str::to_owned),
            ..AlertsConfig::default()
        };
        config.fleet.tick_ms = 3_600_000;
        tweak(&mut config);
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(Error::Config(format!("the bed's config: {problems:?}")));
        }
        let (cloud, car) =
            cloud::start_with_car(&config, &clock, &format!("{}-car", plan.name)).await?;
        let base = format!("http://{}", cloud.ready().api);
        Ok(Self {
            cloud,
            clock,
            base,
            car,
            seq: Sequencer::default(),
            receivers,
            _dir: dir,
        })
    }

    /// A partner's receiver.
    ///
    /// # Panics
    /// If the bed has no such partner (a test's own mistake).
    pub fn receiver(&self, id: &str) -> &Receiver {
        &self.receivers[id]
    }

    /// The cloud's now.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Sends records stamped now, numbered on from the VIN's last, and waits until the cloud
    /// applied them.
    ///
    /// # Panics
    /// On a malformed VIN (a test's own mistake) or when they are not applied in time.
    pub async fn send(&mut self, vin: &str, bodies: Vec<RecordBody>) {
        #[allow(clippy::unwrap_used)]
        let vin: Vin = vin.parse().unwrap();
        let up = self.seq.uplink(vin, self.now(), bodies);
        send_and_wait(&self.cloud, &mut self.car, &up).await;
    }

    /// Sends records each at its own time, numbered on from the VIN's last, and waits until
    /// the cloud applied them.
    ///
    /// # Panics
    /// As [`Bed::send`].
    pub async fn send_timed(&mut self, vin: &str, bodies: Vec<(Timestamp, RecordBody)>) {
        #[allow(clippy::unwrap_used)]
        let vin: Vin = vin.parse().unwrap();
        let up = self.seq.timed(vin, bodies);
        send_and_wait(&self.cloud, &mut self.car, &up).await;
    }

    /// Sends these records as they are (their own seqs and times) and waits until applied.
    ///
    /// # Panics
    /// As [`Bed::send`].
    pub async fn send_records(&mut self, vin: &str, records: Vec<Record>) {
        #[allow(clippy::unwrap_used)]
        let vin: Vin = vin.parse().unwrap();
        send_and_wait(&self.cloud, &mut self.car, &Uplink { vin, records }).await;
    }

    /// Moves the clock on by `ms` and runs the cloud's tick.
    ///
    /// # Panics
    /// If the tick fails.
    pub async fn advance(&mut self, ms: u64) {
        self.clock.advance_ms(ms);
        #[allow(clippy::unwrap_used)]
        self.cloud.tick_now().await.unwrap();
    }

    /// An API call with `token`: the status and the JSON body (`null` when it is not JSON).
    ///
    /// # Panics
    /// If the request cannot be sent (the cloud is down: a test failure).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&str>,
    ) -> (u16, Value) {
        #[allow(clippy::unwrap_used)]
        let mut r = crate::http::client()
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        #[allow(clippy::unwrap_used)]
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A GET as `token` that must answer 200: its JSON.
    ///
    /// # Panics
    /// On any other status.
    pub async fn get_as(&self, path: &str, token: &str) -> Value {
        let (status, json) = self.call("GET", path, token, None).await;
        assert_eq!(status, 200, "GET {path}: {json}");
        json
    }

    /// Waits until `cond` holds, up to `within` (the partners' deliveries, say).
    ///
    /// # Panics
    /// When it does not hold in time, naming `what`.
    pub async fn wait(&self, within: Duration, what: &str, cond: impl FnMut() -> bool) {
        crate::wait::wait_until(within, what, cond).await;
    }
}
