//! Unit tests of the broker harness: the skip rule, where the binary is looked for, and the
//! generated config's order (global settings, then each listener with its TLS lines).
#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn a_missing_binary_is_a_skip_unless_required() {
    assert!(matches!(skip_or_fail(false), Ok(None)));
    assert!(matches!(skip_or_fail(true), Err(Error::MosquittoMissing)));
    let message = Error::MosquittoMissing.to_string();
    assert!(message.contains("mosquitto not installed"), "{message}");
    assert!(message.contains(REQUIRE_ENV), "{message}");
}

#[test]
fn the_binary_is_looked_for_on_path_then_at_the_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("none");
    let fallback = dir.path().join("sbin-mosquitto");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let path_var = std::env::join_paths([&nowhere, &bin]).unwrap();

    assert_eq!(find_binary_in(Some(&path_var), &fallback), None);
    assert_eq!(find_binary_in(None, &fallback), None);
    std::fs::write(&fallback, "").unwrap();
    assert_eq!(
        find_binary_in(Some(&path_var), &fallback),
        Some(fallback.clone())
    );
    std::fs::write(bin.join("mosquitto"), "").unwrap();
    assert_eq!(
        find_binary_in(Some(&path_var), &fallback),
        Some(bin.join("mosquitto"))
    );
}

#[test]
fn the_config_has_the_listener_after_the_global_settings_and_tls_on_the_listener() {
    let dir = Path::new("/tmp/b");
    let plain = render_config(&Options::default(), dir, 4242, None).unwrap();
    assert!(plain.contains("\nallow_anonymous true\n"), "{plain}");
    assert!(plain.contains("\npersistence false\n"), "{plain}");
    assert!(plain.ends_with("listener 4242 127.0.0.1\n"), "{plain}");
    assert!(
        !plain.contains("acl_file") && !plain.contains("cafile"),
        "{plain}"
    );

    let options = Options::default()
        .allow_anonymous(false)
        .persistence(true)
        .acl("pattern write a/%u")
        .config_line("max_queued_messages 5")
        .tls(Tls::mutual(
            Path::new("/p/ca.crt"),
            Path::new("/p/server.crt"),
            Path::new("/p/server.key"),
        ));
    let config = render_config(&options, dir, 4242, None).unwrap();
    let expected_order = [
        "allow_anonymous false",
        "persistence true",
        "persistence_location /tmp/b/",
        "persistence_file mosquitto.db",
        "acl_file /tmp/b/acl",
        "max_queued_messages 5",
        "listener 4242 127.0.0.1",
        "cafile /p/ca.crt",
        "certfile /p/server.crt",
        "keyfile /p/server.key",
        "require_certificate true",
        "use_identity_as_username true",
    ];
    let positions: Vec<_> = expected_order
        .iter()
        .map(|line| config.find(&format!("{line}\n")).unwrap_or(usize::MAX))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{config}");
    assert!(!positions.contains(&usize::MAX), "{config}");

    let injected = Options::default().config_line("a\nallow_anonymous true");
    assert!(matches!(
        render_config(&injected, dir, 1, None),
        Err(Error::MosquittoConfig { .. })
    ));
}

#[test]
fn a_second_tls_listener_follows_the_plain_one() {
    let options = Options::default().tls_listener(Tls::mutual(
        Path::new("/p/ca.crt"),
        Path::new("/p/server.crt"),
        Path::new("/p/server.key"),
    ));
    let config = render_config(&options, Path::new("/tmp/b"), 4242, Some(4343)).unwrap();
    let plain = config.find("listener 4242 127.0.0.1\n").unwrap();
    let tls = config
        .find("listener 4343 127.0.0.1\ncafile /p/ca.crt\n")
        .unwrap();
    assert!(plain < tls, "{config}");
    assert_eq!(config.matches("cafile").count(), 1, "{config}");
}
