//! MQTT clients of tests, stand-ins for cars, for the cloud and for hostile clients:
//!
//! - [`Publisher`]: publishes at QoS 1 and counts the broker's acks ([`Publisher::settle`]
//!   waits for all of them);
//! - [`Subscriber`]: subscribes to a filter and hands every message to a closure from its
//!   event loop's task (a cloud decoding uplinks, a car collecting downlinks);
//! - [`Client`]: one connection whose incoming packets the test reads one by one (SUBACK
//!   codes, PUBACKs, messages), for broker behaviour such as ACLs and sessions; with
//!   [`options`], [`tls_options`] and [`tls`] (a rustls configuration from PEM text).
//!
//! Owns the clients' event loops (each in a tokio task, ended when the client is dropped).
//! Does not own a broker ([`crate::mosquitto`], [`crate::rumqttd`]) nor what a payload means.
//! Calls that must succeed for the test to mean anything (a publish handed to the client, a
//! SUBACK) panic with what failed.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rapport_shared::v1::uplink::Uplink;
use rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, Publish, QoS, SubscribeReasonCode, TlsConfiguration,
    Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::Error;

/// How long a step that should happen may take before the test fails.
pub const STEP: Duration = Duration::from_secs(5);
/// How long a test listens for a message that must not arrive, after a later message that had
/// to travel the same path has arrived.
pub const QUIET: Duration = Duration::from_millis(500);
/// How long a [`Subscriber`] waits for its SUBACK (generous: tests may run under emulation).
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(90);
/// How long [`Publisher::settle`] waits for the broker's acks.
const SETTLE_WAIT: Duration = Duration::from_secs(30);
/// Packets up to 2 MiB each way: above the cloud's 1 MiB limit, so the broker decides.
const MAX_PACKET: usize = 2 << 20;

/// Options for a client of the broker at `addr`: keep-alive 30 s, packets up to 2 MiB, 100
/// publishes in flight.
pub fn client_options(addr: SocketAddr, id: &str) -> MqttOptions {
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_keep_alive(Duration::from_secs(30))
        .set_inflight(100);
    o
}

/// A plain MQTT client publishing at QoS 1 and counting the broker's acks.
#[derive(Debug)]
pub struct Publisher {
    /// The rumqttc handle.
    pub client: AsyncClient,
    acked: Arc<AtomicU64>,
    sent: u64,
    task: JoinHandle<()>,
}

impl Publisher {
    /// Connects as `id` to the broker at `addr` (the connection is made by the event loop, in
    /// the background; it reconnects after errors).
    pub async fn connect(addr: SocketAddr, id: &str) -> Self {
        let (client, mut eventloop) = AsyncClient::new(client_options(addr, id), 1000);
        let acked = Arc::new(AtomicU64::new(0));
        let a = Arc::clone(&acked);
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        a.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Self {
            client,
            acked,
            sent: 0,
            task,
        }
    }

    /// Publishes `payload` on `topic` at QoS 1.
    ///
    /// # Panics
    /// If the client's request queue is closed.
    pub async fn publish(&mut self, topic: &str, payload: Vec<u8>) {
        if let Err(e) = self
            .client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
        {
            panic!("publishing on {topic}: {e}");
        }
        self.sent += 1;
    }

    /// Publishes an envelope on its vehicle's uplink topic.
    ///
    /// # Panics
    /// If it does not encode, or as [`Publisher::publish`].
    pub async fn send(&mut self, up: &Uplink) {
        let topic = rapport_shared::topic::uplink(&up.vin);
        let payload = up
            .encode()
            .unwrap_or_else(|e| panic!("encoding an uplink of {}: {e}", up.vin));
        self.publish(&topic, payload).await;
    }

    /// Waits until the broker acked everything published.
    ///
    /// # Panics
    /// After 30 s without all acks.
    pub async fn settle(&self) {
        let acked = Arc::clone(&self.acked);
        let sent = self.sent;
        crate::wait::wait_until(SETTLE_WAIT, "broker acks", || {
            acked.load(Ordering::SeqCst) >= sent
        })
        .await;
    }

    /// How many publishes were made.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// How many the broker acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::SeqCst)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A client subscribed to one filter whose messages go to a closure.
#[derive(Debug)]
pub struct Subscriber {
    /// The rumqttc handle (to publish as this client, e.g. a cloud's downlinks).
    pub client: AsyncClient,
    task: JoinHandle<()>,
}

impl Subscriber {
    /// Connects as `id` to `addr`, subscribes to `filter` at QoS 1 and returns once the broker
    /// confirmed. Every message then goes to `on_message(topic, payload)`, called from the
    /// event loop's task; after a connection error the loop waits 20 ms and goes on.
    ///
    /// # Errors
    /// [`Error::Mqtt`] if the subscription cannot be asked for or is not confirmed within 90 s.
    pub async fn start(
        addr: SocketAddr,
        id: &str,
        filter: &str,
        mut on_message: impl FnMut(&str, &[u8]) + Send + 'static,
    ) -> Result<Self, Error> {
        let failed = |message: String| Error::Mqtt {
            id: id.to_owned(),
            message,
        };
        let (client, mut eventloop) = AsyncClient::new(client_options(addr, id), 100);
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .map_err(|e| failed(format!("subscribing to {filter}: {e}")))?;
        let (subscribed_tx, subscribed) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => on_message(&p.topic, &p.payload),
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        });
        let confirmed = tokio::time::timeout(SUBSCRIBE_WAIT, subscribed).await;
        if !matches!(confirmed, Ok(Ok(()))) {
            task.abort();
            return Err(failed(format!(
                "no SUBACK for {filter} within {SUBSCRIBE_WAIT:?}"
            )));
        }
        Ok(Self { client, task })
    }

    /// Publishes `payload` on `topic` at QoS 1 as this client (fire and forget).
    ///
    /// # Panics
    /// If the client's request queue is closed.
    pub async fn publish(&self, topic: &str, payload: Vec<u8>) {
        if let Err(e) = self
            .client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
        {
            panic!("publishing on {topic}: {e}");
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Options for a client of the broker on `port`: keep-alive 5 s, clean session as given.
pub fn options(id: &str, port: u16, clean_session: bool) -> MqttOptions {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    options.set_clean_session(clean_session);
    options
}

/// The same over TLS with `tls`, clean session.
pub fn tls_options(id: &str, port: u16, tls: TlsConfiguration) -> MqttOptions {
    let mut options = options(id, port, true);
    options.set_transport(Transport::tls_with_config(tls));
    options
}

/// A rustls client configuration (ring provider, no process-wide default needed) trusting
/// `ca_pem`, presenting `client` = (certificate PEM, key PEM) if given.
///
/// # Errors
/// [`Error::Config`] for PEM text that does not parse or a key that does not fit.
pub fn tls(ca_pem: &str, client: Option<(&str, &str)>) -> Result<TlsConfiguration, Error> {
    let bad = |what: &str, e: &dyn std::fmt::Display| Error::Config(format!("{what}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| bad("CA certificate PEM", &e))?;
        roots.add(cert).map_err(|e| bad("CA certificate", &e))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad("TLS versions", &e))?
    .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("client certificate PEM", &e))?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| bad("client key PEM", &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad("client certificate", &e))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

/// A connected client; its event loop runs in a task until the connection ends.
#[derive(Debug)]
pub struct Client {
    /// The rumqttc handle.
    pub client: AsyncClient,
    /// What the broker's CONNACK said.
    pub session_present: bool,
    incoming: mpsc::UnboundedReceiver<Packet>,
    held: VecDeque<Packet>,
    task: JoinHandle<()>,
}

/// Connects and waits for the CONNACK. Err: why the connection failed (TLS, refused, closed).
///
/// # Errors
/// The reason, as text: tests match on it (`CertificateRequired`, ...).
pub async fn connect(options: MqttOptions) -> Result<Client, String> {
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    let session_present = tokio::time::timeout(STEP, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return Ok(ack.session_present),
                Ok(_) => {}
                Err(err) => return Err(err.to_string()),
            }
        }
    })
    .await
    .map_err(|_| "no CONNACK within the step timeout".to_owned())??;
    let (tx, incoming) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(packet) = event
                && tx.send(packet).is_err()
            {
                return;
            }
        }
    });
    Ok(Client {
        client,
        session_present,
        incoming,
        held: VecDeque::new(),
        task,
    })
}

impl Client {
    /// The next incoming packet matching `pick`, holding back the others (in order) for later
    /// calls; None if none arrives within `wait` or the connection ended.
    async fn next<T>(&mut self, wait: Duration, pick: impl Fn(&Packet) -> Option<T>) -> Option<T> {
        if let Some(i) = self.held.iter().position(|p| pick(p).is_some()) {
            return self.held.remove(i).and_then(|p| pick(&p));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let packet = tokio::time::timeout_at(deadline, self.incoming.recv())
                .await
                .ok()??;
            if let Some(found) = pick(&packet) {
                return Some(found);
            }
            self.held.push_back(packet);
        }
    }

    /// Subscribes at QoS 1 and returns the broker's SUBACK codes.
    ///
    /// # Panics
    /// Without a SUBACK within [`STEP`].
    pub async fn subscribe(&mut self, filter: &str) -> Vec<SubscribeReasonCode> {
        if let Err(e) = self.client.subscribe(filter, QoS::AtLeastOnce).await {
            panic!("subscribing to {filter}: {e}");
        }
        self.next(STEP, |p| match p {
            Packet::SubAck(ack) => Some(ack.return_codes.clone()),
            _ => None,
        })
        .await
        .unwrap_or_else(|| panic!("no SUBACK for {filter}"))
    }

    /// Publishes at QoS 1 and waits for the PUBACK (which Mosquitto also sends for a publish
    /// its ACL drops).
    ///
    /// # Panics
    /// Without a PUBACK within [`STEP`].
    pub async fn publish(&mut self, topic: &str, payload: &str) {
        if let Err(e) = self
            .client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
        {
            panic!("publishing on {topic}: {e}");
        }
        self.next(STEP, |p| matches!(p, Packet::PubAck(_)).then_some(()))
            .await
            .unwrap_or_else(|| panic!("no PUBACK for {topic}"));
    }

    /// The next message received within `wait`, as (topic, payload).
    pub async fn message(&mut self, wait: Duration) -> Option<(String, String)> {
        self.next(wait, |p| match p {
            Packet::Publish(Publish { topic, payload, .. }) => {
                Some((topic.clone(), String::from_utf8_lossy(payload).into_owned()))
            }
            _ => None,
        })
        .await
    }

    /// Sends DISCONNECT and waits for the event loop to end.
    ///
    /// # Panics
    /// If the loop does not end within [`STEP`].
    pub async fn disconnect(self) {
        if let Err(e) = self.client.disconnect().await {
            panic!("disconnecting: {e}");
        }
        match tokio::time::timeout(STEP, self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("the client's event loop failed: {e}"),
            Err(_) => panic!("the client's event loop did not end within {STEP:?}"),
        }
    }
}
