//! Unit tests of loading and validating the settings.

use super::*;

fn good() -> RawConfig {
    let mut raw = RawConfig::default();
    raw.imap.user = "intake@311.test".into();
    raw.imap.secret.password = Some("pw".into());
    raw.smtp.from = "311 for Cities <intake@311.test>".into();
    raw.intake.address = "intake@311.test".into();
    raw.intake.staff_address = "staff@311.test".into();
    raw
}

#[test]
fn good_config_validates_and_hides_passwords() {
    let cfg = Config::from_raw(good(), "test".into()).expect("valid");
    assert_eq!(cfg.message_id_domain, "311.test");
    assert_eq!(format!("{:?}", cfg.imap_password), "Secret(***)");
    assert!(!format!("{cfg:?}").contains("Secret(pw)"));
}

#[test]
fn wrong_values_name_their_key() {
    type Mutation = fn(&mut RawConfig);
    let cases: Vec<(Mutation, &str)> = vec![
        (|r| r.imap.port = 0, "imap.port"),
        (|r| r.intake.tracking_prefix = "31-1".into(), "intake.tracking_prefix"),
        (|r| r.intake.address = "not an address".into(), "intake.address"),
        (|r| r.smtp.from = String::new(), "smtp.from"),
        (|r| r.imap.secret.password = None, "imap.password"),
        (|r| r.database.url = "mysql://x".into(), "database.url"),
        (|r| r.imap.processed_folder = "INBOX".into(), "imap.processed_folder"),
        (|r| r.imap.ca_file = Some("/nonexistent/ca.pem".into()), "imap.ca_file"),
        (|r| r.imap.burst_check = Duration::from_secs(61), "imap.burst_check"),
        (|r| r.imap.quiet_check = Duration::from_secs(61), "imap.quiet_check"),
        (
            |r| {
                r.imap.secret.password_env = Some("X".into());
            },
            "imap.password",
        ),
    ];
    for (mutate, key) in cases {
        let mut raw = good();
        mutate(&mut raw);
        let err = Config::from_raw(raw, "test".into()).expect_err(key).to_string();
        assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
    }
}

#[test]
fn password_from_env_and_file() {
    let mut raw = good();
    raw.imap.secret = SecretSource { password_env: Some("INTAKE311_TEST_PW_VAR".into()), ..Default::default() };
    let err = Config::from_raw(raw.clone(), "t".into()).expect_err("unset var");
    assert!(err.to_string().contains("INTAKE311_TEST_PW_VAR"), "{err}");

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pw");
    std::fs::write(&file, "s3cret\n").expect("write");
    raw.imap.secret = SecretSource { password_file: Some(file), ..Default::default() };
    let cfg = Config::from_raw(raw, "t".into()).expect("valid");
    assert_eq!(cfg.imap_password.expose(), "s3cret");
}

#[test]
fn toml_errors_name_key_and_env_overrides_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[imap]\nport = \"abc\"\n").expect("write");
    let err = Config::load(Some(&path)).expect_err("bad port").to_string();
    assert!(err.contains("imap.port"), "{err}");

    std::fs::write(&path, "[imap]\nprot = 1\n").expect("write");
    let err = Config::load(Some(&path)).expect_err("unknown key").to_string();
    assert!(err.contains("prot"), "{err}");

    let missing = Config::load(Some(Path::new("/nonexistent.toml"))).expect_err("missing");
    assert!(missing.to_string().contains("/nonexistent.toml"));
}
