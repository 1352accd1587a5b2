//! The testbed's story: the whole system in one process — the embedded broker and the cloud on
//! a temporary sled store, partner webhook receivers, and simulated vehicles, each a real
//! agent on a virtual CAN bus with virtual ECUs — driven through weeks of simulated time.
//!
//! Time moves in lockstep steps of [`STEP`]: the cloud's clock is set to the step's end, every
//! car runs to it on its own thread (drivers acting on what their screens show), then the
//! scenario waits until everything written crossed the real MQTT broker and was applied by the
//! cloud, runs the cloud's tick, waits for the webhooks and downlinks that caused, and lets the
//! partners answer. Real time passes only in those waits and in the throttle that keeps the
//! story at `speedup` simulated seconds per real second; because nothing depends on how long a
//! wait took, the same seed tells the same story.
//!
//! Owns: the orchestration and the partners' behaviour. Does not own: any decision — those are
//! the agent's and the cloud's, unmodified.

pub mod cast;
pub mod driver;
pub mod invariants;
pub mod partners;
pub mod report;
pub mod rng;
pub mod story;
pub mod vehicle;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rapport_cloud::Cloud;
use rapport_cloud::clock::{Clock as _, ManualClock};
use rapport_cloud::config::Config;
use rapport_shared::{Timestamp, Vin};

use self::cast::{Cast, DAY_MS, T0_MS};
use self::partners::Partners;
use self::story::{Event, What};
use self::vehicle::Vehicle;
use crate::Error;

/// How far simulated time moves between two looks at the whole system.
pub const STEP: Duration = Duration::from_secs(10 * 60);
/// How long a wait for the system to settle may take before the story gives up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How to run the story.
#[derive(Debug, Clone)]
pub struct Options {
    /// Vehicles (the four kinds, cycled).
    pub vehicles: usize,
    /// Days of simulated time.
    pub days: u32,
    /// Simulated seconds per real second (0: as fast as the machine goes).
    pub speedup: f64,
    /// The seed of everything random.
    pub seed: u64,
    /// Where the cloud's API listens (port 0: any free port).
    pub api: std::net::SocketAddr,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            vehicles: 4,
            days: 28,
            speedup: 40_000.0,
            seed: 1,
            api: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// The operator token the testbed's cloud uses.
pub const OPERATOR_TOKEN: &str = "testbed-operator-token-0123456789abcdef";

/// Where the story stands, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Simulated time done.
    pub done: Duration,
    /// Simulated time in all.
    pub total: Duration,
}

/// Wall time the steps spent in each phase, to see where a run's cost goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    /// The cars running to the step's end on their threads (the simulated bus, the agents'
    /// rules and their sled stores), in parallel.
    pub cars: Duration,
    /// Waiting for the records to cross MQTT and be applied by the cloud, and for the
    /// downlinks and webhooks the step caused (three waits a step).
    pub settle: Duration,
    /// The cloud's fleet tick.
    pub tick: Duration,
    /// The partners reading their webhooks and answering over the API, and the layer diff.
    pub partners: Duration,
}

/// A running testbed.
pub struct Testbed {
    /// The options it runs with.
    pub options: Options,
    /// The cloud.
    pub cloud: Cloud,
    clock: ManualClock,
    /// The vehicles, in cast order.
    pub vehicles: Vec<Vehicle>,
    /// The partners and their receivers.
    pub partners: Partners,
    /// Everything everyone saw, in order.
    pub events: Vec<Event>,
    layers: BTreeMap<Vin, [String; 4]>,
    truth_m: BTreeMap<Vin, u64>,
    frames: BTreeMap<Vin, u64>,
    step: u64,
    /// Wall time spent in each phase of the steps so far.
    pub phases: Phases,
    started: Instant,
    http: reqwest::Client,
    dir: tempfile::TempDir,
    /// The cloud's uplink acks when the system last settled (see [`Testbed::settle`]).
    settled_acks: std::sync::atomic::AtomicU64,
}

impl Testbed {
    /// Starts the cloud (embedded broker, temporary store), the partners and the vehicles.
    /// Must be called inside a multi-threaded tokio runtime.
    ///
    /// # Errors
    /// Whatever could not start, named.
    pub async fn start(options: Options) -> Result<Self, Error> {
        let dir = tempfile::Builder::new()
            .prefix("rapport-testbed-")
            .tempdir()
            .map_err(|e| Error::io("creating the testbed's directory", std::env::temp_dir(), e))?;
        let cast = cast::cast(options.vehicles, options.days, options.seed)?;
        let clock = ManualClock::new(Timestamp::from_millis(T0_MS));
        let urban = cast
            .iter()
            .map(|c| (c.vin, cast::urban(cast::region(c.kind))))
            .collect();
        let partners = Partners::start(&clock, options.seed, urban).await?;
        let mut config = Config::default();
        config.api.listen = options.api;
        config.api.operator_token = Some(OPERATOR_TOKEN.into());
        config.store.path = dir.path().join("cloud");
        config.broker.embedded = true;
        config.broker.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        config.broker.client_id = "rapport-cloud-testbed".into();
        config.partner = partners.configs();
        config.alerts.fallback = Some(cast::DESK.0.into());
        // The scenario runs the tick itself after each step, so the story does not depend on
        // when a background tick happened to fire.
        config.fleet.tick_ms = 3_600_000;
        let config = with_promises(config)?;
        let problems = config.validate();
        if !problems.is_empty() {
            return Err(Error::Scenario(format!("cloud config: {problems:?}")));
        }
        let cloud = Cloud::start_with_clock(&config, Arc::new(clock.clone()))
            .await
            .map_err(|e| Error::Scenario(format!("starting the cloud: {e}")))?;
        if !cloud.wait_subscribed(Duration::from_secs(10)).await {
            return Err(Error::Scenario(
                "the cloud did not subscribe to the uplink".into(),
            ));
        }
        let broker = cloud
            .ready()
            .broker
            .ok_or_else(|| Error::Scenario("no embedded broker".into()))?;
        let http = reqwest::Client::new();
        let base = format!("http://{}", cloud.ready().api);
        // The registry, as the OEM's sales system would send it.
        let status = http
            .post(format!("{base}/api/v1/registry"))
            .bearer_auth(OPERATOR_TOKEN)
            .header("content-type", "text/csv")
            .body(registry_csv(&cast))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| Error::Scenario(format!("registry import: {e}")))?;
        if status != 200 {
            return Err(Error::Scenario(format!(
                "registry import answered {status}"
            )));
        }
        let mut vehicles = Vec::with_capacity(cast.len());
        for c in cast {
            let vdir = dir.path().join(c.vin.to_string());
            vehicles.push(Vehicle::start(c, &vdir, &format!("mqtt://{broker}")).await?);
        }
        let bed = Self {
            options,
            cloud,
            clock,
            vehicles,
            partners,
            events: Vec::new(),
            layers: BTreeMap::new(),
            truth_m: BTreeMap::new(),
            frames: BTreeMap::new(),
            step: 0,
            phases: Phases::default(),
            started: Instant::now(),
            http,
            dir,
            settled_acks: std::sync::atomic::AtomicU64::new(0),
        };
        bed.settle().await?;
        Ok(bed)
    }

    /// The dashboard's address, with the operator token in the fragment (never sent).
    pub fn dashboard_url(&self) -> String {
        format!(
            "http://{}/dashboard/#token={OPERATOR_TOKEN}",
            self.cloud.ready().api
        )
    }

    /// The API's base URL.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.cloud.ready().api)
    }

    /// The driver's name of a VIN.
    pub fn name_of(&self, vin: &Vin) -> String {
        self.vehicles
            .iter()
            .find(|v| v.vin() == *vin)
            .map_or_else(|| vin.to_string(), |v| v.cast.driver.clone())
    }

    /// Simulated time in all.
    pub fn total(&self) -> Duration {
        Duration::from_millis(u64::from(self.options.days) * DAY_MS)
    }

    /// Whether the story is over.
    pub fn finished(&self) -> bool {
        self.step_end(self.step) > self.total()
    }

    fn step_end(&self, step: u64) -> Duration {
        STEP * u32::try_from(step + 1).unwrap_or(u32::MAX)
    }

    /// Runs one step; returns the events it produced.
    ///
    /// # Errors
    /// A vehicle's thread failed, or the system did not settle in time.
    pub async fn step(&mut self) -> Result<Vec<Event>, Error> {
        let real_start = Instant::now();
        let until = self.step_end(self.step).min(self.total());
        self.step += 1;
        self.clock
            .set(Timestamp::from_millis(T0_MS).saturating_add(until));
        let phase = Instant::now();
        for v in &self.vehicles {
            v.start_step(until)?;
        }
        let mut events = Vec::new();
        for v in &self.vehicles {
            let vin = v.vin();
            let s = tokio::task::block_in_place(|| v.finish_step())?;
            self.truth_m.insert(vin, s.truth_m);
            self.frames.insert(vin, s.frames);
            events.extend(s.events);
        }
        self.phases.cars += phase.elapsed();
        // Cars → broker → cloud; then the cloud's tick and what it sent.
        let phase = Instant::now();
        self.settle().await?;
        self.phases.settle += phase.elapsed();
        let phase = Instant::now();
        self.cloud
            .tick_now()
            .await
            .map_err(|e| Error::Scenario(format!("cloud tick: {e}")))?;
        self.phases.tick += phase.elapsed();
        let phase = Instant::now();
        self.settle().await?;
        self.phases.settle += phase.elapsed();
        let phase = Instant::now();
        let now = self.clock.now();
        // What the partners received, and what they do about it.
        let vins: Vec<Vin> = self.vehicles.iter().map(Vehicle::vin).collect();
        events.extend(
            self.partners
                .collect(now, |vin| vins.iter().copied().find(|v| v.as_str() == vin)),
        );
        let base = self.api_base();
        events.extend(self.partners.act(now, &self.http, &base).await);
        self.phases.partners += phase.elapsed();
        let phase = Instant::now();
        self.settle().await?;
        self.phases.settle += phase.elapsed();
        let phase = Instant::now();
        events.extend(self.layer_changes(now));
        self.phases.partners += phase.elapsed();
        events.sort_by_key(|e| e.at);
        self.events.extend(events.iter().cloned());
        // Keep to the asked speed.
        if self.options.speedup > 0.0 {
            let want = STEP.div_f64(self.options.speedup);
            if let Some(rest) = want.checked_sub(real_start.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
        Ok(events)
    }

    /// Where the story stands.
    pub fn progress(&self) -> Progress {
        Progress {
            done: self.step_end(self.step.saturating_sub(1)).min(self.total()),
            total: self.total(),
        }
    }

    /// Waits until every record the cars wrote was applied by the cloud, every downlink the
    /// cloud sent was applied by its car, and no webhook is due.
    async fn settle(&self) -> Result<(), Error> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let mut waiting = Vec::new();
            for v in &self.vehicles {
                let (queued, last) = v.outbox();
                let applied = self
                    .cloud
                    .store()
                    .vehicle(&v.vin())
                    .map_err(|e| Error::Scenario(format!("cloud store: {e}")))?
                    .map_or(0, |s| s.applied.through());
                if queued > 0 || applied < last {
                    waiting.push(format!(
                        "{}: {queued} records queued, cloud has seq {applied} of {last}",
                        v.cast.driver
                    ));
                }
            }
            let sent = self.cloud.metrics().downlinks.load(Ordering::Relaxed);
            let got: u64 = self
                .vehicles
                .iter()
                .map(|v| {
                    let c = v.sync();
                    c.downlinks_applied + c.downlinks_rejected
                })
                .sum();
            if got < sent {
                waiting.push(format!("downlinks: {got} of {sent} applied by the cars"));
            }
            let due = self
                .cloud
                .webhooks_due()
                .map_err(|e| Error::Scenario(format!("webhook outbox: {e}")))?;
            if due > 0 {
                waiting.push(format!("{due} webhooks due"));
            }
            if waiting.is_empty() {
                // The cloud's ingest acks an uplink once it is durable and only then publishes
                // the downlinks it caused (a campaign, a service step): after new acks, look
                // again a moment (one 2 ms wait) later, so a downlink does not reach its car
                // mid-step.
                let acks = self.cloud.metrics().acks.load(Ordering::Relaxed);
                if self.settled_acks.swap(acks, Ordering::Relaxed) == acks {
                    return Ok(());
                }
                waiting.push("uplinks acked a moment ago".into());
            }
            if Instant::now() > deadline {
                return Err(Error::Scenario(format!(
                    "the system did not settle in {SETTLE_TIMEOUT:?}: {}",
                    waiting.join("; ")
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Layer changes since the last look, from the cloud's fleet.
    fn layer_changes(&mut self, now: Timestamp) -> Vec<Event> {
        let mut out = Vec::new();
        let fleet = self.cloud.fleet();
        for v in &self.vehicles {
            let vin = v.vin();
            let Some(l) = fleet.layers_of(&vin) else {
                continue;
            };
            let new = [
                l.car.as_str().to_owned(),
                l.service.as_str().to_owned(),
                l.activity.as_str().to_owned(),
                l.lifecycle.as_str().to_owned(),
            ];
            let old = self.layers.get(&vin).cloned();
            for (i, axis) in ["car maturity", "service maturity", "activity", "lifecycle"]
                .iter()
                .enumerate()
            {
                let from = old.as_ref().map(|o| o[i].clone()).unwrap_or_default();
                if from != new[i] {
                    out.push(Event {
                        at: now,
                        vin: Some(vin),
                        who: "cloud".into(),
                        what: What::LayerChanged {
                            axis: (*axis).to_owned(),
                            from,
                            to: new[i].clone(),
                        },
                    });
                }
            }
            self.layers.insert(vin, new);
        }
        out
    }

    /// The summary of the story so far (the promises kept over the story from the cloud's
    /// `GET /api/v1/promises`).
    pub async fn report(&self) -> report::Report {
        let promises = self.promises().await.unwrap_or_else(|e| {
            tracing::warn!(cause = %e, "reading the promises kept");
            serde_json::Value::Null
        });
        report::Report::build(self, &promises)
    }

    /// The story's window as a query: `from=<its start>&to=<now>` (ms).
    pub fn window(&self) -> String {
        format!("from={T0_MS}&to={}", self.clock.now().as_millis())
    }

    /// `GET /api/v1/promises` over the story's window, as the operator.
    ///
    /// # Errors
    /// The request failed or did not answer 200 with JSON.
    pub async fn promises(&self) -> Result<serde_json::Value, Error> {
        let url = format!("{}/api/v1/promises?{}", self.api_base(), self.window());
        let r = self
            .http
            .get(&url)
            .bearer_auth(OPERATOR_TOKEN)
            .send()
            .await
            .map_err(|e| Error::Scenario(format!("GET {url}: {e}")))?;
        if r.status() != 200 {
            return Err(Error::Scenario(format!(
                "GET {url} answered {}",
                r.status()
            )));
        }
        r.json()
            .await
            .map_err(|e| Error::Scenario(format!("GET {url}: {e}")))
    }

    /// Stops the vehicles and the cloud.
    ///
    /// # Errors
    /// The cloud's shutdown failed.
    pub async fn shutdown(self) -> Result<(), Error> {
        for v in self.vehicles {
            v.stop().await;
        }
        self.partners.stop();
        let r = self
            .cloud
            .shutdown()
            .await
            .map_err(|e| Error::Scenario(format!("cloud shutdown: {e}")));
        drop(self.dir);
        r
    }

    /// The car's true odometer (metres) and frames on its bus.
    pub fn truth(&self, vin: &Vin) -> (u64, u64) {
        (
            self.truth_m.get(vin).copied().unwrap_or(0),
            self.frames.get(vin).copied().unwrap_or(0),
        )
    }

    /// The cloud's sled directory.
    pub fn cloud_store_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("cloud")
    }

    /// A vehicle's agent store (sled) directory.
    pub fn agent_store_dir(&self, vin: &Vin) -> std::path::PathBuf {
        self.dir.path().join(vin.to_string()).join("store")
    }

    /// Real time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The story's service promises, as the cloud's config file has them (`[promises]`): a
/// critical fault's driver contacted within the hour, a technician on site within 3 h in the
/// cities and 24 h elsewhere; maintenance contacted within a day and booked within a week; a
/// partner task contacted within the hour. A second miss escalates to the OEM's regional
/// service.
pub const PROMISES_TOML: &str = r#"
second_level = "oem-regional"
urban_regions = ["SH", "BJ"]

[[rule]]
kind = "critical_fault"
stage = "contacted"
within_minutes = 60

[[rule]]
kind = "critical_fault"
stage = "on_site"
within_minutes = 180
region = "urban"

[[rule]]
kind = "critical_fault"
stage = "on_site"
within_minutes = 1440
region = "other"

[[rule]]
kind = "maintenance"
stage = "contacted"
within_minutes = 1440

[[rule]]
kind = "maintenance"
stage = "booked"
within_minutes = 10080

[[rule]]
kind = "partner_task"
stage = "contacted"
within_minutes = 60
"#;

/// `config` with [`PROMISES_TOML`] as its `[promises]` section, through the config file's own
/// format (so the testbed's cloud reads it exactly as a deployment's would).
fn with_promises(config: Config) -> Result<Config, Error> {
    let bad = |e: String| Error::Scenario(format!("the testbed's [promises]: {e}"));
    let mut doc = toml::Table::try_from(&config).map_err(|e| bad(e.to_string()))?;
    let promises: toml::Table = PROMISES_TOML.parse().map_err(|e| bad(format!("{e}")))?;
    doc.insert("promises".into(), toml::Value::Table(promises));
    let text = toml::to_string(&doc).map_err(|e| bad(e.to_string()))?;
    let mut out = Config::from_toml("testbed.toml", &text).map_err(|e| bad(e.to_string()))?;
    out.path = config.path;
    Ok(out)
}

/// The registry CSV for the cast.
fn registry_csv(cast: &[Cast]) -> String {
    let mut out =
        String::from("vin,category,line,delivered,dealer,region,partner_sharing,engagement\n");
    for c in cast {
        let line = match c.kind {
            cast::Kind::Truck => "example-tractor-2012",
            _ => "example-hatchback-2021",
        };
        let region = cast::region(c.kind);
        out.push_str(&format!(
            "{},{},{line},{},{},{region},{},true\n",
            c.vin,
            c.kind.category(),
            vehicle_date(c.delivered_ms),
            c.dealer,
            c.partner_sharing,
        ));
    }
    out
}

fn vehicle_date(ms: u64) -> String {
    vehicle::civil_date(ms)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The promises the cloud is given name the cast's second level and urban regions, and
    /// read as a config file's `[promises]` would.
    #[test]
    fn the_promises_section_matches_the_cast() {
        let t: toml::Table = PROMISES_TOML.parse().unwrap_or_default();
        assert_eq!(t["second_level"].as_str(), Some(cast::SECOND_LEVEL.0));
        let urban: Vec<&str> = t["urban_regions"]
            .as_array()
            .map(|a| a.iter().filter_map(toml::Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(urban, cast::URBAN_REGIONS);
        let rules = t["rule"].as_array().map_or(0, Vec::len);
        assert_eq!(rules, 6);
        // Some cars urban, one remote.
        let regions: Vec<&str> = cast::Kind::ALL.iter().map(|k| cast::region(*k)).collect();
        assert_eq!(regions.iter().filter(|r| cast::urban(r)).count(), 2);
        assert_eq!(cast::region(cast::Kind::Truck), "XZ");
        assert!(!cast::urban("XZ"));
    }
}
