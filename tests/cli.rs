//! The command line's contract, without mail servers: `--json` on every list and show parses
//! with the documented fields, `--help` lists statuses and roles, an old or missing schema is
//! refused with the way out, `--as` is who the audit log and the timeline record, and a bad
//! address is an error. On the engine `INTAKE311_TEST_ENGINE` names (see tests/support).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may stop at the first surprise

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};

use intake311::domain::{Eligibility, RequestStatus, TrackingNumber};
use intake311::store::{NewEvent, NewRequest, Source, Store};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
    /// An SQLite file in `dir`, or an empty database of the shared PostgreSQL cluster.
    db_url: String,
}

impl Env {
    /// A config with an empty database (no schema); IMAP and SMTP point nowhere.
    fn new() -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("c.toml");
        let db_url = match support::test_engine() {
            support::Engine::Sqlite => format!("sqlite://{}", dir.path().join("db.sqlite").display()),
            support::Engine::Postgres => {
                support::postgres::shared().and_then(|c| c.fresh_database()).expect("database")
            }
        };
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = \"{db_url}\"\n[imap]\nhost = \"127.0.0.1\"\nport = 1\nuser = \"i@311.test\"\n\
                 password = \"pw\"\ntimeout = \"2s\"\n[smtp]\nhost = \"127.0.0.1\"\nport = 1\nfrom = \"i@311.test\"\n\
                 timeout = \"2s\"\n[intake]\naddress = \"i@311.test\"\nstaff_address = \"s@311.test\"\n\
                 templates_dir = \"{}\"\n",
                repo().join("templates").display()
            ),
        )
        .expect("write config");
        Env { dir, config, db_url }
    }

    fn db_url(&self) -> String {
        self.db_url.clone()
    }

    /// `intake311 --config … ARGS`, with `envs` set and the actor variables cleared.
    fn run_env(&self, envs: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_intake311"));
        cmd.arg("--config").arg(&self.config).args(args).env("INTAKE311_LOG", "warn");
        cmd.env_remove("INTAKE311_STAFF").env_remove("SUDO_USER").env("USER", "tester");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().expect("run intake311")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_env(&[], args)
    }

    /// Runs and requires success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?} failed: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"))
    }

    fn migrated() -> Env {
        let env = Env::new();
        env.ok(&["migrate"]);
        env
    }

    fn file(&self, name: &str, content: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write file");
        p.display().to_string()
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn has_fields(v: &Value, fields: &[&str]) {
    for f in fields {
        assert!(v.get(*f).is_some(), "missing `{f}` in {v}");
    }
}

/// A request opened directly in the store, as intake would (no mail servers here).
async fn open_request(env: &Env) -> anyhow::Result<String> {
    let store = Store::connect(&env.db_url(), 1).await?;
    let mut tx = store.begin().await?;
    let tracking: TrackingNumber = "311-2026-0001".parse()?;
    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).ok_or_else(|| anyhow::anyhow!("date"))?;
    let request = NewRequest {
        tracking: &tracking,
        city_id: None,
        official_email: "mayor@daytonohio.gov",
        official_name: "Jane Mayor",
        subject: "Salt purchasing",
        status: RequestStatus::NeedsCity,
        eligibility: Eligibility::Unknown,
        eligibility_reason: "no city found",
        due_date: None,
        parent_id: None,
        review_reason: "no city found",
        suggested_city_id: None,
        received_on: today,
    };
    let event = NewEvent { actor: "system", source: Source::System, event: "created", detail: "" };
    tx.open_request(&request, &[("mayor@daytonohio.gov", "official")], &[event]).await?;
    tx.insert_quarantine(None, ("INBOX", 7, 3), "odd@x.test", "Odd", 12, "odd@x.test", "not an email message").await?;
    tx.commit().await?;
    store.close().await;
    Ok(tracking.to_string())
}

#[test]
fn a_missing_or_older_schema_is_refused_until_migrate() -> anyhow::Result<()> {
    let env = Env::new();
    for args in [&["cities", "list"][..], &["stats"], &["requests", "list"], &["staff", "add", "a@311.test"]] {
        let out = env.run(args);
        assert!(!out.status.success(), "{args:?} ran on a database without schema: {}", text(&out));
        assert!(text(&out).contains("run `intake311 migrate`"), "{args:?}: {}", text(&out));
    }
    // `check` says so on its database line (IMAP and SMTP fail here too: nothing listens).
    let report: Value = serde_json::from_slice(&env.run(&["check", "--json"]).stdout)?;
    assert_eq!(report["ok"], Value::Bool(false));
    let db = report["checks"].as_array().and_then(|c| c.iter().find(|l| l["name"] == "database")).cloned();
    let db = db.ok_or_else(|| anyhow::anyhow!("no database line in {report}"))?;
    assert_eq!(db["ok"], Value::Bool(false), "{db}");
    assert!(db["detail"].as_str().unwrap_or_default().contains("intake311 migrate"), "{db}");

    assert!(env.ok(&["migrate"]).contains("schema is current"));
    assert!(env.ok(&["cities", "list"]).contains("0 cities"));
    let report: Value = serde_json::from_slice(&env.run(&["check", "--json"]).stdout)?;
    let db = report["checks"].as_array().and_then(|c| c.iter().find(|l| l["name"] == "database")).cloned();
    assert_eq!(db.map(|d| d["ok"].clone()), Some(Value::Bool(true)), "{report}");

    // A database migrated by an older intake311 (its first migration only): refused, and left
    // as it was until `migrate`.
    let old = Env::new();
    let engine = support::test_engine();
    let dir = match engine {
        support::Engine::Sqlite => "migrations/sqlite",
        support::Engine::Postgres => "migrations/postgres",
    };
    let rt = tokio::runtime::Runtime::new()?;
    let migrator = rt.block_on(sqlx::migrate::Migrator::new(repo().join(dir)))?;
    // PostgreSQL's schema is one migration so far, so no older PostgreSQL schema exists yet;
    // this part runs there as soon as a second migration lands.
    let older_exists = migrator.iter().count() >= 2;
    if !older_exists
        && !support::sqlite_only("cli: an older schema is refused", "migrations/postgres has one migration only")
    {
        return Ok(());
    }
    let first = migrator.iter().map(|m| m.version).min().unwrap_or(1);
    rt.block_on(async {
        match engine {
            support::Engine::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", old.db_url())).await?;
                migrator.run_to(first, &pool).await?;
                pool.close().await;
            }
            support::Engine::Postgres => {
                let pool = sqlx::PgPool::connect(&old.db_url()).await?;
                migrator.run_to(first, &pool).await?;
                pool.close().await;
            }
        }
        anyhow::Ok(())
    })?;
    let out = old.run(&["cities", "list"]);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("older than this intake311") && t.contains("run `intake311 migrate`"), "{t}");
    assert!(!old.ok(&["migrate"]).contains(" 0 migration(s)"), "the refused command migrated nothing");
    old.ok(&["cities", "list"]);
    Ok(())
}

#[test]
fn help_lists_statuses_roles_and_the_actor_rule() {
    let env = Env::new();
    let help = env.ok(&["requests", "status", "--help"]);
    for s in RequestStatus::ALL {
        assert!(help.contains(s.as_str()), "`{s}` not in:\n{help}");
    }
    assert!(help.contains("--as <EMAIL>") && help.contains("INTAKE311_STAFF"), "{help}");
    assert!(env.ok(&["requests", "list", "--help"]).contains("waiting_on_city"));
    let help = env.ok(&["staff", "add", "--help"]);
    assert!(help.contains("staff") && help.contains("admin") && help.contains("--as <EMAIL>"), "{help}");
    // Every command that changes something takes --as.
    for args in [
        &["cities", "import"][..],
        &["cities", "add"],
        &["cities", "set"],
        &["cities", "remove"],
        &["contacts", "add"],
        &["contacts", "remove"],
        &["staff", "remove"],
        &["requests", "note"],
        &["requests", "assign"],
        &["requests", "close"],
        &["review", "approve"],
        &["review", "reject"],
        &["quarantine", "retry"],
        &["quarantine", "release"],
    ] {
        let mut with_help = args.to_vec();
        with_help.push("--help");
        assert!(env.ok(&with_help).contains("--as <EMAIL>"), "{args:?} has no --as");
    }
    let out = env.run(&["requests", "status", "311-2026-0001", "done"]);
    assert!(!out.status.success() && text(&out).contains("possible values"), "{}", text(&out));
}

#[test]
fn json_of_every_list_and_show() -> anyhow::Result<()> {
    let env = Env::migrated();
    let csv = repo().join("config/cities.example.csv").display().to_string();
    env.ok(&["cities", "import", &csv, "--as", "alex@311.test"]);
    env.ok(&["staff", "add", "ana@311.test", "--name", "Ana", "--as", "alex@311.test"]);
    env.ok(&["contacts", "add", "clerk@daytonohio.gov", "--city", "1", "--name", "Sam", "--as", "alex@311.test"]);
    let tracking = tokio::runtime::Runtime::new()?.block_on(open_request(&env))?;

    let cities = env.json(&["cities", "list", "--json"]);
    assert_eq!(cities.as_array().map(Vec::len), Some(14));
    has_fields(&cities[0], &["id", "name", "state", "eligible", "domains", "eligible_from", "eligible_until"]);
    let city = env.json(&["cities", "show", "1", "--json"]);
    has_fields(&city, &["city", "contacts", "requests", "eligible_today"]);
    assert_eq!(city["contacts"][0]["email"], "clerk@daytonohio.gov");
    let contacts = env.json(&["contacts", "list", "--json"]);
    has_fields(&contacts[0], &["email", "name", "title", "city_id", "city", "source"]);
    let staff = env.json(&["staff", "list", "--json"]);
    assert_eq!(staff[0]["email"], "ana@311.test");
    has_fields(&staff[0], &["name", "role", "active"]);

    let requests = env.json(&["requests", "list", "--json", "--status", "needs_city"]);
    assert_eq!(requests.as_array().map(Vec::len), Some(1), "{requests}");
    has_fields(&requests[0], &["tracking", "status", "eligibility", "official_email", "subject"]);
    assert_eq!(env.json(&["requests", "list", "--json", "--status", "closed"]).as_array().map(Vec::len), Some(0));
    let shown = env.json(&["requests", "show", &tracking, "--json"]);
    has_fields(&shown, &["request", "follows", "messages", "outbox", "timeline"]);
    assert_eq!(shown["request"]["tracking"], tracking.as_str());
    assert_eq!(shown["timeline"][0]["event"], "created");
    let review = env.json(&["review", "list", "--json"]);
    has_fields(&review[0], &["tracking", "review_reason", "suggested_city"]);

    let quarantine = env.json(&["quarantine", "list", "--json"]);
    has_fields(&quarantine[0], &["id", "reason", "status", "from_addr"]);
    let id = quarantine[0]["id"].to_string();
    let entry = env.json(&["quarantine", "show", &id, "--json"]);
    has_fields(&entry, &["entry", "headers", "folder"]);
    assert_eq!(entry["entry"]["reason"], "not an email message");
    let out = env.run(&["quarantine", "show", "999"]);
    assert!(!out.status.success() && text(&out).contains("no quarantine entry 999"), "{}", text(&out));
    has_fields(&env.json(&["stats", "--json"]), &["inbound", "requests_by_status", "outbox", "in_review"]);
    Ok(())
}

#[test]
fn the_actor_is_who_the_audit_and_timeline_record() -> anyhow::Result<()> {
    let env = Env::migrated();
    env.ok(&["staff", "add", "ana@311.test", "--name", "Ana Staff", "--as", "Boss@311.TEST"]);
    env.ok(&["cities", "add", "Kettering", "OH", "--domains", "ketteringoh.org"]);
    env.run_env(&[("INTAKE311_STAFF", "ana@311.test")], &["cities", "set", "1", "--notes", "by env"]);
    let tracking = tokio::runtime::Runtime::new()?.block_on(open_request(&env))?;
    let note = env.file("note.txt", "Called the clerk.");
    let out = env.ok(&["requests", "note", &tracking, "--body", &note, "--as", "ana@311.test"]);
    assert!(out.contains("note added"), "{out}");
    let out = env.run_env(&[("INTAKE311_STAFF", "ana@311.test")], &["requests", "assign", &tracking, "me"]);
    assert!(out.status.success() && text(&out).contains("assigned to ana@311.test"), "{}", text(&out));

    let shown = env.json(&["requests", "show", &tracking, "--json"]);
    let timeline = shown["timeline"].as_array().cloned().unwrap_or_default();
    let note_event = timeline.iter().find(|e| e["event"] == "note").cloned().unwrap_or_default();
    assert_eq!((note_event["actor"].as_str(), note_event["source"].as_str()), (Some("ana@311.test"), Some("cli")));
    assert!(
        timeline.iter().any(|e| e["actor"] == "ana@311.test" && e["event"].as_str() == Some("assigned")),
        "{shown}"
    );

    let audit = tokio::runtime::Runtime::new()?.block_on(async {
        let store = Store::connect(&env.db_url(), 1).await?;
        store.audit_log(10).await
    })?;
    let by = |action: &str| audit.iter().find(|(_, _, a, _)| a == action).map(|(_, actor, _, _)| actor.clone());
    assert_eq!(by("staff add").as_deref(), Some("boss@311.test"), "{audit:?}");
    assert_eq!(by("cities add").as_deref(), Some("tester"), "no --as, no $INTAKE311_STAFF: the login name");
    assert_eq!(by("cities set").as_deref(), Some("ana@311.test"), "{audit:?}");
    Ok(())
}

#[test]
fn a_bad_address_is_an_error_never_a_fallback() {
    let env = Env::migrated();
    for args in [
        &["contacts", "remove", "not-an-address"][..],
        &["contacts", "add", "nobody", "--city", "1"],
        &["staff", "add", "x@"],
        &["staff", "remove", "@x.test"],
        &["cities", "remove", "1", "--as", "root"],
        &["requests", "assign", "311-2026-0001", "someone"],
    ] {
        let out = env.run(args);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(text(&out).contains("is not an email address"), "{args:?}: {}", text(&out));
    }
    let out = env.run_env(&[("INTAKE311_STAFF", "ana")], &["cities", "remove", "1"]);
    assert!(!out.status.success() && text(&out).contains("$INTAKE311_STAFF"), "{}", text(&out));
}

#[test]
fn city_edits_name_the_option_that_is_wrong() {
    let env = Env::migrated();
    let out = env.run(&[
        "cities",
        "add",
        "Kettering",
        "OH",
        "--eligible-from",
        "2027-01-01",
        "--eligible-until",
        "2026-01-01",
    ]);
    assert!(!out.status.success() && text(&out).contains("--eligible-until: 2026-01-01 is before"), "{}", text(&out));
    let out = env.run(&["cities", "add", " ", "OH"]);
    assert!(!out.status.success() && text(&out).contains("--name: empty"), "{}", text(&out));
    assert!(env.ok(&["cities", "add", "Kettering", "oh"]).contains("added Kettering, OH (#1)"));
    let out = env.run(&["cities", "set", "1", "--state", "ZZ"]);
    assert!(!out.status.success() && text(&out).contains("--state:"), "{}", text(&out));
    let out = env.run(&["cities", "set", "9", "--notes", "x"]);
    assert!(!out.status.success() && text(&out).contains("no city has id 9"), "{}", text(&out));
}

#[test]
fn templates_export_writes_the_built_in_set_that_loads_back_as_overrides() {
    let env = Env::migrated();
    let dir = env.dir.path().join("exported");
    let out = env.ok(&["templates", "export", &dir.display().to_string()]);
    // Every file under templates/ is built in, so the export writes exactly that many.
    let shipped = walk_files(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"));
    assert!(shipped > 40 && out.contains(&format!("{shipped} file(s) written")), "{shipped}: {out}");
    assert!(dir.join("ack_eligible.txt.hbs").is_file() && dir.join("partials/footer_html.hbs").is_file());
    let again = env.run(&["templates", "export", &dir.display().to_string()]);
    assert!(!again.status.success(), "must refuse to overwrite: {}", text(&again));
    env.ok(&["templates", "export", "--force", &dir.display().to_string()]);
    // An installed binary needs no template files: a config without templates_dir checks fine,
    // and `check` says which zone dates are taken in and that no sender is verified.
    let config = std::fs::read_to_string(&env.config).expect("config");
    let without: String =
        config.lines().filter(|l| !l.starts_with("templates_dir")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&env.config, without.replace("[intake]\n", "[intake]\ntimezone = \"America/Chicago\"\n"))
        .expect("write");
    // IMAP and SMTP point nowhere here, so check exits non-zero; its report is still JSON.
    let out = env.run(&["check", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("check --json");
    let line = |name: &str| {
        report["checks"].as_array().and_then(|c| c.iter().find(|l| l["name"] == name)).cloned().unwrap_or_default()
    };
    assert_eq!(line("templates")["ok"], true, "{report}");
    assert!(line("templates")["detail"].as_str().unwrap_or_default().starts_with("built-in templates"), "{report}");
    assert!(line("timezone")["detail"].as_str().unwrap_or_default().starts_with("America/Chicago"), "{report}");
    assert_eq!(line("senders")["warn"], true, "{report}");
}

fn walk_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .expect("templates dir")
        .map(|e| e.expect("entry").path())
        .map(|p| if p.is_dir() { walk_files(&p) } else { 1 })
        .sum()
}
