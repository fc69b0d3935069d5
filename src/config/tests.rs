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

/// A minimal valid config file with `extra` appended to its `[intake]` section.
fn load_with_intake(extra: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        format!(
            "[imap]\nuser = \"intake@311.test\"\npassword = \"pw\"\n[smtp]\nfrom = \"intake@311.test\"\n\
             [intake]\naddress = \"intake@311.test\"\nstaff_address = \"staff@311.test\"\n{extra}\n"
        ),
    )
    .expect("write");
    Config::load(Some(&path))
}

#[test]
fn timezone_defaults_to_utc_and_takes_an_iana_name() {
    use chrono::{NaiveDate, TimeZone as _, Utc};
    assert_eq!(load_with_intake("").expect("valid").intake.timezone, chrono_tz::UTC);
    let cfg = load_with_intake("timezone = \"America/Chicago\"").expect("valid");
    assert_eq!(cfg.intake.timezone, chrono_tz::America::Chicago);
    // 02:00 UTC on 1 January is still 31 December in Chicago: the date the zone gives.
    let arrival = Utc.with_ymd_and_hms(2027, 1, 1, 2, 0, 0).single().expect("instant");
    assert_eq!(
        arrival.with_timezone(&cfg.intake.timezone).date_naive(),
        NaiveDate::from_ymd_opt(2026, 12, 31).expect("date")
    );
    // The default went through figment as a name and came back; other names parse too.
    assert_eq!(parse_timezone("Europe/Berlin"), Ok(chrono_tz::Europe::Berlin));
}

#[test]
fn a_bad_timezone_names_the_key_and_the_value() {
    for bad in ["America/Chicag0", "CST6", "", "Central Time"] {
        let err = load_with_intake(&format!("timezone = \"{bad}\"")).expect_err(bad).to_string();
        assert!(err.contains("intake.timezone") && err.contains(&format!("`{bad}`")), "{bad}: {err}");
    }
    let err = load_with_intake("timezone = 5").expect_err("not a string").to_string();
    assert!(err.contains("intake.timezone"), "{err}");
}

#[test]
fn templates_dir_is_optional_and_an_old_value_still_reads() {
    assert_eq!(load_with_intake("").expect("valid").intake.templates_dir, None);
    let cfg = load_with_intake("templates_dir = \"templates\"").expect("valid");
    assert_eq!(cfg.intake.templates_dir, Some(PathBuf::from("templates")));
}
