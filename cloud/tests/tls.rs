//! The cloud's mTLS path to an external broker: Mosquitto with a TLS listener that requires
//! client certificates (made here with the `openssl` command for this test only). With its
//! certificate the cloud subscribes and ingests; without one the broker refuses it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use rapport_cloud::Cloud;
use rapport_cloud::config::Tls;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for localhost and a client certificate, all P-256.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=rapport test CA",
    ]);
    openssl(dir, &ca);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, cn) in [("server", "localhost"), ("client", "rapport-cloud")] {
        let subj = format!("/CN={cn}");
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_to_mosquitto() {
    if Command::new("openssl").arg("version").output().is_err() {
        println!("SKIP mtls_to_mosquitto: no openssl command to make certificates");
        return;
    }
    let certs = temp_dir();
    make_certs(certs.path());
    // Mosquitto started as root drops to its own user: let it read the files.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(certs.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["ca.pem", "server.pem", "server.key"] {
        let perm = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(certs.path().join(f), perm).unwrap();
    }
    let tls_port = free_port();
    let p = |f: &str| certs.path().join(f).display().to_string();
    let extra = format!(
        "listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n\
         require_certificate true\nuse_identity_as_username true\n",
        p("ca.pem"),
        p("server.pem"),
        p("server.key")
    );
    let Some(broker) = Mosquitto::start_with("mtls_to_mosquitto", &extra) else {
        return;
    };
    let tls_addr: std::net::SocketAddr = format!("127.0.0.1:{tls_port}").parse().unwrap();
    wait_for(Duration::from_secs(10), "the TLS listener", || {
        std::net::TcpStream::connect(tls_addr).is_ok()
    });

    // Without a client certificate the broker refuses the cloud.
    let dir = temp_dir();
    let mut c = config(dir.path(), BrokerKind::External(broker.addr), "mtls-none");
    c.broker.url = Some(format!("mqtts://localhost:{tls_port}"));
    c.broker.tls = Some(Tls {
        ca: certs.path().join("ca.pem"),
        cert: None,
        key: None,
    });
    assert!(c.validate().is_empty(), "{:?}", c.validate());
    let refused = Cloud::start(&c).await.unwrap();
    assert!(!refused.wait_subscribed(Duration::from_secs(3)).await);
    refused.shutdown().await.unwrap();

    // With it: subscribed, and an uplink published on the plain listener is ingested.
    let dir = temp_dir();
    c.store.path = dir.path().join("store");
    c.broker.client_id = "mtls-cloud".into();
    c.broker.tls = Some(Tls {
        ca: certs.path().join("ca.pem"),
        cert: Some(certs.path().join("client.pem")),
        key: Some(certs.path().join("client.key")),
    });
    let cloud = Cloud::start(&c).await.unwrap();
    assert!(cloud.wait_subscribed(Duration::from_secs(20)).await);
    let v = vin("WP0ZZZ99ZTS392124");
    let mut car = Publisher::connect(broker.addr, "mtls-car").await;
    car.send(&uplink(v, 1..=20, record)).await;
    car.settle().await;
    let m = cloud.metrics();
    wait_until(Duration::from_secs(20), "20 records applied", || {
        m.records_applied.load(Ordering::SeqCst) == 20
    })
    .await;
    cloud.shutdown().await.unwrap();
}

#[test]
fn unreadable_tls_files_are_named() {
    let dir = temp_dir();
    std::fs::write(dir.path().join("empty.pem"), "not a certificate\n").unwrap();
    let c = rapport_cloud::config::Config {
        path: Some(dir.path().join("cloud.toml")),
        ..Default::default()
    };
    let tls = Tls {
        ca: "missing.pem".into(),
        cert: None,
        key: None,
    };
    let err = rapport_cloud::mqtt::tls_config(&c, &tls)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("broker.tls.ca: ") && err.contains("missing.pem"),
        "{err}"
    );
    let tls = Tls {
        ca: "empty.pem".into(),
        cert: None,
        key: None,
    };
    let err = rapport_cloud::mqtt::tls_config(&c, &tls)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("empty.pem") && err.contains("no PEM certificate"),
        "{err}"
    );
}
