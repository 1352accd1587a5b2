//! An embedded rumqttd broker for tests and benches that want a broker without Mosquitto: the
//! agent's sync tests (a broker that comes up late, on a port chosen before) and the sync bench
//! where Mosquitto is absent.
//!
//! Owns the broker's settings (1 MiB payloads, 100 in flight, a large router segment so a
//! backlog of tens of thousands of records fits) and the wait for its port. The broker runs on a
//! thread of its own for the rest of the process: rumqttd has no shutdown. Not the cloud's
//! embedded broker, which the cloud configures itself.

use std::time::Duration;

use crate::Error;
use crate::wait::{loopback, wait_port};

/// How long the broker may take to listen.
const READY_WAIT: Duration = Duration::from_secs(30);

/// Starts rumqttd on `127.0.0.1:<port>` and returns once it accepts connections.
///
/// # Errors
/// [`Error::Io`] if its thread cannot be started.
///
/// # Panics
/// If it does not listen within 30 s (the port taken, say).
pub fn start(port: u16) -> Result<(), Error> {
    use rumqttd::{Broker, ConnectionSettings, RouterConfig, ServerSettings};
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 1 << 20,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "v4".into(),
        listen: loopback(port),
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = rumqttd::Config {
        id: 0,
        router: RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 100 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some([("1".to_owned(), server)].into_iter().collect()),
        ..rumqttd::Config::default()
    };
    std::thread::Builder::new()
        .name(format!("rumqttd-{port}"))
        .spawn(move || {
            let mut broker = Broker::new(config);
            let _ = broker.start();
        })
        .map_err(|source| Error::Io {
            what: "starting a thread for",
            path: format!("rumqttd on 127.0.0.1:{port}").into(),
            source,
        })?;
    wait_port(loopback(port), READY_WAIT);
    Ok(())
}
