//! MQTT test clients for the Mosquitto tests: a rumqttc client whose event loop runs in a task
//! and hands every incoming packet to the test, plus a rustls client configuration built from
//! PEM text with the ring provider. Test code only: it panics on anything unexpected.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, MqttOptions, Packet, Publish, QoS, SubscribeReasonCode, TlsConfiguration,
    Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a step that should happen may take before the test fails.
pub const STEP: Duration = Duration::from_secs(5);
/// How long a test listens for a message that must not arrive, after a later message that had
/// to travel the same path has arrived.
pub const QUIET: Duration = Duration::from_millis(500);

/// Options for a client of the broker on `port`: keep-alive 5 s, clean session as given.
pub fn options(id: &str, port: u16, clean_session: bool) -> MqttOptions {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options.set_keep_alive(Duration::from_secs(5));
    options.set_clean_session(clean_session);
    options
}

/// The same over TLS with `tls`.
pub fn tls_options(id: &str, port: u16, tls: TlsConfiguration) -> MqttOptions {
    let mut options = options(id, port, true);
    options.set_transport(Transport::tls_with_config(tls));
    options
}

/// A rustls client configuration (ring provider, no process-wide default needed) trusting
/// `ca_pem`, presenting `client` = (certificate PEM, key PEM) if given.
pub fn tls(ca_pem: &str, client: Option<(&str, &str)>) -> TlsConfiguration {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            builder
                .with_client_auth_cert(
                    chain,
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    TlsConfiguration::Rustls(Arc::new(config))
}

/// A connected client; its event loop runs in a task until the connection ends.
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
    pub async fn subscribe(&mut self, filter: &str) -> Vec<SubscribeReasonCode> {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        self.next(STEP, |p| match p {
            Packet::SubAck(ack) => Some(ack.return_codes.clone()),
            _ => None,
        })
        .await
        .unwrap_or_else(|| panic!("no SUBACK for {filter}"))
    }

    /// Publishes at QoS 1 and waits for the PUBACK (which Mosquitto also sends for a publish
    /// its ACL drops).
    pub async fn publish(&mut self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
            .unwrap();
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
    pub async fn disconnect(self) {
        self.client.disconnect().await.unwrap();
        tokio::time::timeout(STEP, self.task)
            .await
            .unwrap()
            .unwrap();
    }
}
