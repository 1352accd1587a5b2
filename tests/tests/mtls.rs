//! Mutual TLS against a real Mosquitto, as rapport deploys it: a CA and certificates made at
//! test time, `require_certificate` and `use_identity_as_username` (a vehicle's username is the
//! CN of its certificate, its VIN), and an ACL that lets a vehicle write only its own uplink and
//! read only its own downlink while the cloud reads every uplink and writes every downlink.
//!
//! Mosquitto acknowledges a QoS 1 publish its ACL drops (MQTT 3.1.1 has no way to say no), so
//! every negative is asserted on what subscribers receive: a later message on the same path
//! arrives first (the broker keeps per-client order, so a forbidden one would have come before
//! it), then nothing else arrives for a while.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rapport_harness::mosquitto::{Mosquitto, Options, Tls};
use rapport_harness::mqtt::{Client, QUIET, STEP, connect, options, tls, tls_options};
use rapport_harness::pki::{Ca, Issued};
use tempfile::TempDir;

const VIN_A: &str = "WVWZZZ1JZXW000001";
const VIN_B: &str = "WF0XXXGCDX1234567";
const CLOUD: &str = "cloud-ingest";

const ACL: &str = "\
# every client: write its own uplink, read its own downlink (%u = certificate CN)
pattern write rapport/v1/%u/up
pattern read rapport/v1/%u/down

user cloud-ingest
topic read rapport/v1/+/up
topic write rapport/v1/+/down
";

struct Fleet {
    broker: Mosquitto,
    ca: Ca,
    a: Issued,
    b: Issued,
    cloud: Issued,
    _dir: TempDir,
}

impl Fleet {
    /// CA, broker certificate, certificates for A, B and the cloud, and a broker with mTLS and
    /// the ACL. None where mosquitto is not installed.
    fn start() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::generate(dir.path(), "rapport test CA").unwrap();
        let server = ca.server().unwrap();
        let options = Options::default()
            .allow_anonymous(false)
            .tls(Tls::mutual(ca.cert(), &server.cert, &server.key))
            .acl(ACL);
        let broker = Mosquitto::start(options).unwrap()?;
        Some(Self {
            broker,
            a: ca.client(VIN_A).unwrap(),
            b: ca.client(VIN_B).unwrap(),
            cloud: ca.client(CLOUD).unwrap(),
            ca,
            _dir: dir,
        })
    }

    /// Connects as `who` with client id `id`; panics with the broker's log if refused.
    async fn connect(&self, who: &Issued, id: &str) -> Client {
        let tls = tls(self.ca.cert_pem(), Some((&who.cert_pem, &who.key_pem))).unwrap();
        match connect(tls_options(id, self.broker.port(), tls)).await {
            Ok(client) => client,
            Err(err) => panic!("{id} could not connect: {err}\n{}", self.broker.log_tail()),
        }
    }
}

fn up(vin: &str) -> String {
    format!("rapport/v1/{vin}/up")
}

fn down(vin: &str) -> String {
    format!("rapport/v1/{vin}/down")
}

#[tokio::test]
async fn a_vehicle_cannot_publish_as_another() {
    let Some(fleet) = Fleet::start() else {
        return;
    };
    let mut cloud = fleet.connect(&fleet.cloud, "cloud").await;
    cloud.subscribe("rapport/v1/+/up").await;
    let mut a = fleet.connect(&fleet.a, VIN_A).await;
    let mut b = fleet.connect(&fleet.b, VIN_B).await;

    // Both uplinks reach the cloud when their owners write them.
    a.publish(&up(VIN_A), "a-1").await;
    assert_eq!(cloud.message(STEP).await, Some((up(VIN_A), "a-1".into())));
    b.publish(&up(VIN_B), "b-1").await;
    assert_eq!(cloud.message(STEP).await, Some((up(VIN_B), "b-1".into())));

    // A writes B's uplink (the broker acks and drops it), then its own.
    a.publish(&up(VIN_B), "forged-by-a").await;
    a.publish(&up(VIN_A), "a-2").await;
    assert_eq!(cloud.message(STEP).await, Some((up(VIN_A), "a-2".into())));
    assert_eq!(cloud.message(QUIET).await, None);

    // A vehicle cannot write downlinks either, its own included.
    let mut a_reader = fleet.connect(&fleet.a, "a-reader").await;
    a_reader.subscribe(&down(VIN_A)).await;
    a.publish(&down(VIN_A), "self-served").await;
    cloud.publish(&down(VIN_A), "from-cloud").await;
    assert_eq!(
        a_reader.message(STEP).await,
        Some((down(VIN_A), "from-cloud".into()))
    );
    assert_eq!(a_reader.message(QUIET).await, None);
}

#[tokio::test]
async fn a_vehicle_reads_only_its_own_downlink() {
    let Some(fleet) = Fleet::start() else {
        return;
    };
    let mut a = fleet.connect(&fleet.a, VIN_A).await;
    a.subscribe(&down(VIN_A)).await;
    a.subscribe(&down(VIN_B)).await;
    // A second session of A with a wildcard: it sees neither B's downlink nor any uplink.
    let mut a_wild = fleet.connect(&fleet.a, "a-wild").await;
    a_wild.subscribe("rapport/v1/#").await;
    let mut b = fleet.connect(&fleet.b, VIN_B).await;
    b.subscribe(&down(VIN_B)).await;
    let mut cloud = fleet.connect(&fleet.cloud, "cloud").await;

    b.publish(&up(VIN_B), "b-up").await;
    cloud.publish(&down(VIN_B), "for-b").await;
    cloud.publish(&down(VIN_A), "for-a").await;

    // B's downlink was delivered - to B.
    assert_eq!(b.message(STEP).await, Some((down(VIN_B), "for-b".into())));
    for reader in [&mut a, &mut a_wild] {
        assert_eq!(
            reader.message(STEP).await,
            Some((down(VIN_A), "for-a".into()))
        );
        assert_eq!(reader.message(QUIET).await, None);
    }
}

#[tokio::test]
async fn a_client_without_a_certificate_cannot_connect() {
    let Some(fleet) = Fleet::start() else {
        return;
    };
    let port = fleet.broker.port();
    // The same trust, with and without a client certificate: only the certificate differs.
    let with = tls(
        fleet.ca.cert_pem(),
        Some((&fleet.a.cert_pem, &fleet.a.key_pem)),
    )
    .unwrap();
    connect(tls_options("with-cert", port, with)).await.unwrap();
    let without = tls(fleet.ca.cert_pem(), None).unwrap();
    let refused = connect(tls_options("no-cert", port, without)).await;
    let err = refused.expect_err("connected without a client certificate");
    // The broker said why (a TLS 1.3 alert after the handshake): no certificate.
    assert!(err.contains("CertificateRequired"), "{err}");
    // Nor does plain MQTT get through to the TLS listener.
    let plain = connect(options("plain", port, true)).await;
    assert!(plain.is_err(), "connected without TLS");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let Some(fleet) = Fleet::start() else {
        return;
    };
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue = Ca::generate(rogue_dir.path(), "rapport test CA").unwrap();
    // Same VIN, same CA name, different key: the broker must check the signature.
    let impostor = rogue.client(VIN_A).unwrap();
    let tls = tls(
        fleet.ca.cert_pem(),
        Some((&impostor.cert_pem, &impostor.key_pem)),
    )
    .unwrap();
    let refused = connect(tls_options(VIN_A, fleet.broker.port(), tls)).await;
    let err = refused.expect_err("connected with a certificate from another CA");
    assert!(err.contains("UnknownCA"), "{err}");
    // The genuine certificate for the same VIN is accepted.
    fleet.connect(&fleet.a, VIN_A).await;
}
