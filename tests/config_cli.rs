//! The command line and the config, without mail servers: the documented example config is
//! valid, `INTAKE311__SECTION__KEY` overrides apply, wrong values name their key, and CSV
//! imports are all-or-nothing with every bad line named.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn intake311(config: &Path, envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_intake311"));
    cmd.arg("--config").arg(config).args(args).env("INTAKE311_LOG", "warn");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run intake311")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn the_documented_example_config_loads_with_overrides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = dir.path().join("smtp-password");
    std::fs::write(&pw, "s3cret\n").expect("write");
    let db = dir.path().join("example.db");
    let db_url = format!("sqlite://{}", db.display());
    let pw_path = pw.display().to_string();
    let envs = [
        ("INTAKE311_IMAP_PASSWORD", "from-env"),
        ("INTAKE311__SMTP__PASSWORD_FILE", pw_path.as_str()),
        ("INTAKE311__DATABASE__URL", db_url.as_str()),
    ];
    let out = intake311(&repo().join("config/intake311.toml"), &envs, &["migrate"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(db.exists(), "the override moved the database to {}", db.display());
    let out = intake311(&repo().join("config/intake311.toml"), &envs, &["cities", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("0 cities"), "{}", text(&out));

    // A wrong value from the environment is named by its key.
    let mut bad = envs.to_vec();
    bad.push(("INTAKE311__IMAP__PORT", "not-a-port"));
    let out = intake311(&repo().join("config/intake311.toml"), &bad, &["cities", "list"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("imap.port"), "{}", text(&out));

    // Without the password variable the error names the key and the variable.
    let out = intake311(&repo().join("config/intake311.toml"), &envs[1..], &["cities", "list"]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("imap.password") && t.contains("INTAKE311_IMAP_PASSWORD"), "{t}");
    assert!(!t.contains("s3cret"), "a password was printed: {t}");
}

fn minimal_config(dir: &Path) -> PathBuf {
    let path = dir.join("c.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n[imap]\nuser = \"i@311.test\"\npassword = \"pw\"\n\
             [smtp]\nfrom = \"i@311.test\"\n[intake]\naddress = \"i@311.test\"\nstaff_address = \"s@311.test\"\n",
            dir.join("db.sqlite").display()
        ),
    )
    .expect("write config");
    path
}

#[test]
fn a_bad_csv_names_every_bad_line_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = minimal_config(dir.path());
    assert!(intake311(&config, &[], &["migrate"]).status.success());
    let good = repo().join("config/cities.example.csv");
    let out = intake311(&config, &[], &["cities", "import", &good.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("added 14, changed 0, removed 0, unchanged 0") && text(&out).contains("applied"),
        "{}",
        text(&out)
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "name,state,domains,eligible\r\nNewtown,CT,newtownct.gov,yes\r\nOops,ZZ,oops.gov,yes\r\nDup,OH,daytonohio.gov;newtownct.gov,perhaps\r\n")
        .expect("write");
    let out = intake311(&config, &[], &["cities", "import", &bad.display().to_string()]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("line 3: state:"), "{t}");
    assert!(t.contains("line 4: domains: `newtownct.gov` is already listed on line 2"), "{t}");
    assert!(t.contains("line 4: eligible:"), "{t}");
    assert!(t.contains("nothing was changed"), "{t}");

    let out = intake311(&config, &[], &["cities", "list", "--json"]);
    let cities: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(cities.as_array().map(Vec::len), Some(14), "the bad file changed nothing");

    // A file that is valid on its own but claims a domain another city owns: nothing changes.
    let clash = dir.path().join("clash.csv");
    std::fs::write(
        &clash,
        "name,state,domains,eligible\nNewtown,CT,newtownct.gov,yes\nKettering,OH,daytonohio.gov,yes\n",
    )
    .expect("write");
    let out = intake311(&config, &[], &["cities", "import", &clash.display().to_string()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("line 3: domains: `daytonohio.gov` already belongs to Dayton, OH"), "{}", text(&out));
    let out = intake311(&config, &[], &["cities", "list", "--json"]);
    let cities: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(cities.as_array().map(Vec::len), Some(14), "Newtown was not added half-way");

    // Re-importing the same file changes nothing and says so; export round-trips.
    let out = intake311(&config, &[], &["cities", "import", &good.display().to_string()]);
    assert!(text(&out).contains("added 0, changed 0, removed 0, unchanged 14"), "{}", text(&out));
    let exported = dir.path().join("export.csv");
    let out = intake311(&config, &[], &["cities", "export", "--output", &exported.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = intake311(&config, &[], &["cities", "import", "--replace", "--dry-run", &exported.display().to_string()]);
    assert!(text(&out).contains("added 0, changed 0, removed 0, unchanged 14"), "{}", text(&out));

    // An edited export: the diff is exact, --dry-run changes nothing, then it applies.
    let csv = std::fs::read_to_string(&exported).expect("read");
    let edited: String = csv
        .lines()
        .filter(|l| !l.contains(",Tulsa,"))
        .map(|l| if l.contains(",Flint,") { l.replace(",yes,", ",no,") } else { l.to_string() })
        .chain(["\"\",Kettering,OH,ketteringoh.org,yes,,,,".to_string()])
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&exported, edited).expect("write");
    let out = intake311(&config, &[], &["cities", "import", "--replace", "--dry-run", &exported.display().to_string()]);
    let t = text(&out);
    assert!(t.contains("added 1, changed 1, removed 1, unchanged 12"), "{t}");
    assert!(
        t.contains("+ Kettering, OH")
            && t.contains("~ Flint, MI")
            && t.contains("eligible: yes → no")
            && t.contains("- Tulsa, OK"),
        "{t}"
    );
    assert!(t.contains("dry run: nothing changed"), "{t}");
    let out = intake311(&config, &[], &["cities", "import", "--replace", &exported.display().to_string()]);
    assert!(text(&out).contains("applied"), "{}", text(&out));
    let out = intake311(&config, &[], &["cities", "list", "--json"]);
    let cities: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(cities.as_array().map(Vec::len), Some(14));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Tulsa"));
}

#[test]
fn staff_and_requests_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = minimal_config(dir.path());
    assert!(intake311(&config, &[], &["migrate"]).status.success());
    let out = intake311(&config, &[], &["staff", "add", "Ana@311.test", "--name", "Ana", "--role", "admin"]);
    assert!(out.status.success() && text(&out).contains("added ana@311.test (admin)"), "{}", text(&out));
    let out = intake311(&config, &[], &["staff", "list"]);
    assert!(text(&out).contains("ana@311.test") && text(&out).contains("admin"), "{}", text(&out));
    let out = intake311(&config, &[], &["staff", "add", "not-an-address"]);
    assert!(!out.status.success() && text(&out).contains("not an email address"), "{}", text(&out));

    let out = intake311(&config, &[], &["requests", "list", "--status", "bogus"]);
    assert!(!out.status.success() && text(&out).contains("invalid value 'bogus'"), "{}", text(&out));
    assert!(text(&out).contains("needs_city"), "the error lists the statuses: {}", text(&out));
    let out = intake311(&config, &[], &["requests", "show", "311-2026-9999"]);
    assert!(!out.status.success() && text(&out).contains("no request 311-2026-9999"), "{}", text(&out));
    let out = intake311(&config, &[], &["requests", "show", "nonsense"]);
    assert!(!out.status.success() && text(&out).contains("is not a tracking number"), "{}", text(&out));
}

#[test]
fn the_calendar_lists_business_days_and_holidays_and_names_a_bad_holiday_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = dir.path().join("smtp-password");
    std::fs::write(&pw, "s3cret\n").expect("write");
    let pw_path = pw.display().to_string();
    let envs = [("INTAKE311_IMAP_PASSWORD", "from-env"), ("INTAKE311__SMTP__PASSWORD_FILE", pw_path.as_str())];
    let example = repo().join("config/intake311.toml");
    let out = intake311(&example, &envs, &["calendar", "show", "--from", "2026-11-23", "--to", "2026-11-30"]);
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    assert_eq!(
        lines[..5],
        [
            "2026-11-23 Mon  business day",
            "2026-11-24 Tue  business day",
            "2026-11-25 Wed  business day",
            "2026-11-26 Thu  holiday       Thanksgiving Day",
            "2026-11-27 Fri  business day",
        ],
        "{lines:#?}"
    );
    assert_eq!(lines[5], "2026-11-30 Mon  business day", "weekends are left out without --all");
    assert!(lines[6].starts_with("5 business day(s), 1 holiday(s) from 2026-11-23 to 2026-11-30"), "{}", lines[6]);

    let out = intake311(
        &example,
        &envs,
        &["calendar", "show", "--from", "2027-07-03", "--to", "2027-07-05", "--all", "--json"],
    );
    let days: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let kinds: Vec<&str> = days.as_array().unwrap().iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["weekend", "weekend", "holiday"], "{days}");
    assert_eq!(days[2]["holiday"], "Independence Day (observed)");

    let bad = dir.path().join("holidays.txt");
    std::fs::write(&bad, "# ours\n2027-01-01 New Year's Day\n2027-01-18\n").expect("write");
    let bad_path = bad.display().to_string();
    let mut with_bad = envs.to_vec();
    with_bad.push(("INTAKE311__DEADLINES__HOLIDAYS", bad_path.as_str()));
    let out = intake311(&example, &with_bad, &["calendar", "show"]);
    assert!(!out.status.success());
    assert!(
        text(&out)
            .contains(&format!("{bad_path} line 3: 2027-01-18 has no name (write the holiday's name after the date)")),
        "{}",
        text(&out)
    );

    let out = Command::new(env!("CARGO_BIN_EXE_intake311"))
        .args(["calendar", "us-federal", "--from", "2026", "--to", "2035"])
        .output()
        .expect("run");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(repo().join("config/holidays.us-federal.txt")).unwrap(),
        "the shipped file is what the rule prints"
    );
}
