//! A fleet test bed: one cloud in this process on a manual clock, with its embedded broker, a
//! car publisher, and partners whose webhook receivers verify signatures on the same clock —
//! what the fleet's, the reads' and the dashboard's tests each used to build for themselves.
//!
//! Owns the bed's wiring and its small verbs (send records stamped now, move the clock and
//! tick, call the API, record the downlinks the cars would get). Runs on sled, or on either
//! backend for the cloud's behaviour tests ([`Bed::start_on`]). Does not own any test's data
//! or assertions.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rapport_cloud::Cloud;
use rapport_cloud::clock::{Clock, ManualClock};
use rapport_cloud::config::Config;
use rapport_cloud::fleet::partners::AlertsConfig;
use rapport_shared::{Downlink, Record, RecordBody, Timestamp, Uplink, Vin};
use serde_json::Value;

use crate::Error;
use crate::cloud::{
    self, BrokerKind, StoreKind, TestStore, partner, receiver_clock, send_and_wait,
};
use crate::mqtt::{Publisher, Subscriber};
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

/// The API token of [`DEALER_NORTH`].
pub const NORTH_TOKEN: &str = "north-token-0123456789abcdef0123456789";
/// The API token of [`DEALER_SOUTH`].
pub const SOUTH_TOKEN: &str = "south-token-0123456789abcdef0123456789";

/// A dealer in the north, the partner most beds have.
pub const DEALER_NORTH: Partner = Partner {
    id: "dealer-north",
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    token: Some(NORTH_TOKEN),
};
/// A dealer in the south, for a second vehicle's alerts.
pub const DEALER_SOUTH: Partner = Partner {
    id: "dealer-south",
    secret: "whsec_c2VjcmV0LXNvdXRoLTEyMzQ1Njc4OTAxMjM0NTY=",
    token: Some(SOUTH_TOKEN),
};
/// The desk alerts escalate to (a bed's [`Plan::fallback`]).
pub const DESK: Partner = Partner {
    id: "desk",
    secret: "whsec_ZGVzay1zZWNyZXQtMTIzNDU2Nzg5MDEyMzQ1Njc4",
    token: Some("desk-token-0123456789abcdef0123456789"),
};

/// A vehicle's registration through the API ([`Bed::register`]): in the `north` region,
/// with both consents given.
#[derive(Clone, Copy, Debug)]
pub struct Registration<'a> {
    /// The selling dealer's partner id.
    pub dealer: &'a str,
    /// `passenger` or `commercial`.
    pub category: &'a str,
    /// The model line.
    pub line: &'a str,
    /// The delivery date, `YYYY-MM-DD`.
    pub delivered: &'a str,
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

impl Plan {
    /// A bed named `name` from `t0_ms` (unix ms) whose `dealers` escalate to [`DESK`].
    pub fn escalating(name: &str, t0_ms: u64, dealers: &[Partner]) -> Self {
        Self {
            name: name.to_owned(),
            t0: Timestamp::from_millis(t0_ms),
            partners: dealers.iter().copied().chain([DESK]).collect(),
            fallback: Some(DESK.id),
        }
    }
}

/// What a stopped bed stored in ([`Bed::stop`]), kept until dropped.
pub struct Stopped {
    /// The sled store's directory (the cloud's, and the operator token's, on PostgreSQL too).
    pub sled_dir: std::path::PathBuf,
    /// The store (its database, for PostgreSQL).
    pub store: TestStore,
    _dir: tempfile::TempDir,
}

/// A running bed.
pub struct Bed {
    /// The cloud.
    pub cloud: Cloud,
    /// Its clock.
    pub clock: ManualClock,
    /// `http://` and the API's address.
    pub base: String,
    /// The API's operator token (as `tweak` left it).
    pub operator: String,
    /// The cars' MQTT publisher.
    pub car: Publisher,
    /// Sequence numbers per VIN for [`Bed::send`].
    pub seq: Sequencer,
    /// Each partner's receiver, by id.
    pub receivers: BTreeMap<&'static str, Receiver>,
    /// [`Plan::name`].
    name: String,
    /// The downlinks seen since [`Bed::watch_downlinks`], and the subscription seeing them.
    downlinks: Option<(Arc<Mutex<Vec<Downlink>>>, Subscriber)>,
    /// The sled store's directory.
    sled_dir: std::path::PathBuf,
    _dir: tempfile::TempDir,
    /// Last: the database goes after the cloud.
    _store: TestStore,
}

impl Bed {
    /// Starts a cloud after `tweak` had its say on the config (the API's operator token is
    /// [`cloud::OPERATOR`] unless `tweak` sets another). The background tick is slowed to an
    /// hour: the test moves time and ticks itself, deterministically.
    ///
    /// # Errors
    /// The receivers, the config or the cloud failing to start.
    pub async fn start(plan: Plan, tweak: impl FnOnce(&mut Config)) -> Result<Self, Error> {
        Self::start_in(TestStore::sled(), plan, tweak).await
    }

    /// As [`Bed::start`], on the store backend `kind`: `Ok(None)` (after printing the skip)
    /// for PostgreSQL without a server. The database is named after [`Plan::name`].
    ///
    /// # Errors
    /// As [`Bed::start`], and the database failing to be made.
    pub async fn start_on(
        kind: StoreKind,
        plan: Plan,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Option<Self>, Error> {
        let Some(store) = TestStore::new(kind, &plan.name)? else {
            return Ok(None);
        };
        Self::start_in(store, plan, tweak).await.map(Some)
    }

    async fn start_in(
        store: TestStore,
        plan: Plan,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<Self, Error> {
        let dir = crate::files::temp_dir(&plan.name, "the bed's store")?;
        let clock = ManualClock::new(plan.t0);
        let mut config = cloud::config(dir.path(), BrokerKind::Embedded, &plan.name)?;
        store.configure(&mut config);
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
            operator: config.api.operator_token.clone().unwrap_or_default(),
            car,
            seq: Sequencer::default(),
            receivers,
            name: plan.name,
            downlinks: None,
            sled_dir: config.store_path(),
            _dir: dir,
            _store: store,
        })
    }

    /// From now on records every downlink the cloud publishes to any car (a stand-in for the
    /// cars' subscriptions), for [`Bed::downlinks`].
    ///
    /// # Errors
    /// [`Error::Cloud`] without an embedded broker, [`Error::Mqtt`] if the subscription fails.
    pub async fn watch_downlinks(&mut self) -> Result<(), Error> {
        let broker = self
            .cloud
            .ready()
            .broker
            .ok_or_else(|| Error::Cloud("no embedded broker".into()))?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let down = Subscriber::start(
            broker,
            &format!("{}-down", self.name),
            "rapport/v1/+/down",
            move |_, payload| {
                if let Ok(d) = Downlink::decode(payload) {
                    sink.lock().unwrap_or_else(PoisonError::into_inner).push(d);
                }
            },
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.downlinks = Some((seen, down));
        Ok(())
    }

    /// The downlinks seen since [`Bed::watch_downlinks`] (none before it).
    pub fn downlinks(&self) -> Vec<Downlink> {
        self.downlinks.as_ref().map_or_else(Vec::new, |(seen, _)| {
            seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
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
        self.request(method, path, Some(token), body).await
    }

    /// An API call with a bearer `token` when given (none: an anonymous caller) and a JSON
    /// `body` when given: the status and the JSON body (`null` when it is not JSON).
    ///
    /// # Panics
    /// On an unknown method or when the request cannot be sent (the cloud is down).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value) {
        #[allow(clippy::unwrap_used)]
        let method = method.parse().unwrap();
        crate::http::request(method, &format!("{}{path}", self.base), token, body).await
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

    /// Acknowledges alert `id` as `token`: the status and the JSON body.
    ///
    /// # Panics
    /// As [`Bed::call`].
    pub async fn acknowledge(&self, id: u64, token: &str) -> (u16, Value) {
        let path = format!("/api/v1/alerts/{id}/acknowledge");
        self.call("POST", &path, token, None).await
    }

    /// Registers `vin` as the operator.
    ///
    /// # Panics
    /// Unless the API answers 200.
    pub async fn register(&self, vin: &str, r: Registration<'_>) {
        let Registration {
            dealer,
            category,
            line,
            delivered,
        } = r;
        let body = format!(
            r#"{{"category":"{category}","line":"{line}","delivered":"{delivered}","dealer":"{dealer}","region":"north","consents":{{"partner_sharing":true,"engagement":true}}}}"#
        );
        let path = format!("/api/v1/vehicles/{vin}/registration");
        let (status, json) = self.call("PUT", &path, &self.operator, Some(&body)).await;
        assert_eq!(status, 200, "{json}");
    }

    /// The bed's store (its database, for PostgreSQL).
    pub fn test_store(&self) -> &TestStore {
        &self._store
    }

    /// Stops the cloud and hands back what it stored in, still there (for a test that scans
    /// the store directly: the sled directory is free once the cloud is down).
    ///
    /// # Errors
    /// [`Error::Cloud`] if the cloud does not stop cleanly.
    pub async fn stop(self) -> Result<Stopped, Error> {
        let Self {
            cloud,
            sled_dir,
            _dir,
            _store,
            ..
        } = self;
        cloud
            .shutdown()
            .await
            .map_err(|e| Error::Cloud(format!("stopping: {e}")))?;
        Ok(Stopped {
            sled_dir,
            store: _store,
            _dir,
        })
    }

    /// Waits until `cond` holds, up to `within` (the partners' deliveries, say).
    ///
    /// # Panics
    /// When it does not hold in time, naming `what`.
    pub async fn wait(&self, within: Duration, what: &str, cond: impl FnMut() -> bool) {
        crate::wait::wait_until(within, what, cond).await;
    }
}
