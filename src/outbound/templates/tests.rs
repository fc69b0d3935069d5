//! Unit tests of loading, overriding, exporting and rendering the templates.

use super::*;
use crate::outbound::context::*;
use crate::outbound::markdown::markdown_to_html;
use crate::text::opens_with_greeting;

fn ctx() -> AckContext {
    AckContext {
        service_name: "311 for Cities".into(),
        tracking: "311-2026-0042".into(),
        tag: "[311-2026-0042]".into(),
        subject: "Water <b>main</b> & financing".into(),
        official_name: "Jane <script>alert(1)</script>".into(),
        official_email: "jane@dayton.gov".into(),
        city: Some("Dayton, OH".into()),
        due_date: "Thursday, December 10, 2026".into(),
        response_days: 10,
        intake_address: "intake@311.test".into(),
        reason: "domain dayton.gov → Dayton, OH (eligible)".into(),
    }
}

#[test]
fn shipped_templates_compile_and_render_every_outcome() {
    let t = Templates::load(None).expect("templates load");
    for name in ["ack_eligible", "ack_not_eligible", "ack_unknown_city", "followup_added"] {
        let mut c = ctx();
        if name == "ack_unknown_city" {
            c.city = None;
        }
        let r = t.render(name, &c).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(r.subject.starts_with("[311-2026-0042] Re: Water <b>main</b> & financing"), "{name}: {}", r.subject);
        assert!(r.text.contains("311-2026-0042"), "{name}");
        assert!(r.html.contains("311-2026-0042"), "{name}");
        assert!(!r.html.contains("<script>"), "{name}: sender text must be escaped in HTML");
        assert!(r.html.contains("&lt;script&gt;") || !r.html.contains("Jane"), "{name}");
        assert!(!r.html.contains("<b>main</b>"), "{name}");
        assert!(r.text.contains("Jane <script>"), "{name}: text is not HTML-escaped");
    }
    let eligible = t.render("ack_eligible", &ctx()).expect("render");
    assert!(eligible.text.contains("Thursday, December 10, 2026"));
}

#[test]
fn staff_and_city_mails_render_and_escape() {
    let t = Templates::load(None).expect("templates load");
    let staff = StaffContext {
        service_name: "311 for Cities".into(),
        tracking: "311-2026-0042".into(),
        tag: "[311-2026-0042]".into(),
        subject: "Roads <i>now</i>".into(),
        city: "Dayton, OH".into(),
        official_name: "Jane <b>".into(),
        official_email: "jane@dayton.gov".into(),
        from_name: "Jane <b>".into(),
        from_email: "jane@dayton.gov".into(),
        due_date: "Thursday, December 10, 2026".into(),
        status: "acknowledged".into(),
        eligibility: "eligible".into(),
        reason: "domain dayton.gov".into(),
        text: "Question with <script>x</script>".into(),
        attachments: vec!["plan.pdf".into()],
        topics: vec!["Housing".into(), "Finance and budgeting".into()],
        topics_confirmed: false,
        intake_address: "intake@311.test".into(),
        help: crate::intake::commands::HELP.into(),
    };
    let r = t.render("staff_new_request", &staff).expect("render");
    assert_eq!(r.subject, "[311-2026-0042] New question from Dayton, OH: Roads <i>now</i>");
    assert!(r.text.contains("#respond") && r.text.contains("plan.pdf") && r.text.contains("<script>x</script>"));
    assert!(r.text.contains("Topics:     Housing, Finance and budgeting (suggested; #topic to change)"), "{}", r.text);
    assert!(!r.html.contains("<script>") && !r.html.contains("<b>"), "{}", r.html);
    let r = t.render("staff_followup", &staff).expect("render");
    assert!(r.subject.starts_with("[311-2026-0042] Follow-up from Jane <b>: "), "{}", r.subject);

    let response = ResponseContext {
        service_name: "311 for Cities".into(),
        tracking: "311-2026-0042".into(),
        tag: "[311-2026-0042]".into(),
        subject: "Roads".into(),
        official_name: "Jane".into(),
        body_text: "**Findings**: fix the roads.".into(),
        body_html: markdown_to_html("**Findings**: fix the roads."),
        greeted: false,
        staff_name: "Ana".into(),
        attachments: vec!["memo.pdf".into()],
        intake_address: "intake@311.test".into(),
    };
    let r = t.render("response", &response).expect("render");
    assert_eq!(r.subject, "[311-2026-0042] Response: Roads");
    assert!(r.html.contains("<strong>Findings</strong>") && r.text.contains("**Findings**"));
    assert!(r.text.contains("Attached: memo.pdf") && r.text.contains("Ana"));
    assert!(r.text.contains("Dear Jane,") && r.html.contains("<p>Dear Jane,</p>"), "{}", r.text);
    let r = t.render("reply", &response).expect("render");
    assert_eq!(r.subject, "[311-2026-0042] Re: Roads");
    assert!(r.text.contains("Dear Jane,") && r.html.contains("<p>Dear Jane,</p>"), "{}", r.text);
    // Staff who greet the official themselves are not greeted over.
    let own = "Dear Mayor Jane,\n\nThe roads.";
    let greeted = ResponseContext {
        body_text: own.into(),
        body_html: markdown_to_html(own),
        greeted: opens_with_greeting(own, "Jane"),
        ..response
    };
    for name in ["response", "reply"] {
        let r = t.render(name, &greeted).expect("render");
        assert!(!r.text.contains("Dear Jane,") && !r.html.contains("Dear Jane,"), "{name}: {}", r.text);
        assert_eq!(r.text.matches("Dear Mayor Jane,").count(), 1, "{name}: {}", r.text);
    }

    let err = CommandErrorContext {
        service_name: "311 for Cities".into(),
        tag: String::new(),
        subject: "Roads".into(),
        error: "unknown command #frob".into(),
        help: "help".into(),
        intake_address: "intake@311.test".into(),
    };
    let r = t.render("staff_command_error", &err).expect("render");
    assert_eq!(r.subject, "Could not apply your command: Roads");
    assert!(r.text.contains("unknown command #frob") && r.text.contains("nothing was sent to the city"));
}

/// A folder holding only `files` (name, text), as an override folder.
fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }
    dir
}

#[test]
fn the_built_in_set_is_exactly_the_templates_folder() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut on_disk = Vec::new();
    for entry in std::fs::read_dir(&root).expect("read templates/").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() {
            for p in std::fs::read_dir(entry.path()).expect("read partials/").flatten() {
                on_disk.push(format!("{name}/{}", p.file_name().to_string_lossy()));
            }
        } else {
            on_disk.push(name);
        }
    }
    on_disk.sort();
    let mut built_in: Vec<String> = builtin::files().map(|(n, _)| n.to_string()).collect();
    built_in.sort();
    assert_eq!(on_disk, built_in, "a file added under templates/ must be added to builtin.rs");
    for (name, text) in builtin::files() {
        assert_eq!(std::fs::read_to_string(root.join(name)).expect("read"), text, "{name}");
    }
    let names: Vec<&str> =
        builtin::MAIL_FILES.iter().step_by(3).map(|(n, _)| n.split('.').next().unwrap_or("")).collect();
    assert_eq!(names, TEMPLATE_NAMES);
}

#[test]
fn without_overrides_the_built_in_set_loads() {
    let t = Templates::load(None).expect("built-in");
    assert!(t.overridden().is_empty());
    assert_eq!(t.dir.overrides_dir(), None);
    assert_eq!(t.dir.display().to_string(), "built-in templates");
}

#[test]
fn an_override_replaces_its_template_only() {
    let dir = folder(&[
        ("ack_eligible.subject.hbs", "{{tag}} Got it: {{subject}}"),
        ("partials/footer_text.hbs", "-- \nOverridden footer"),
        (".gitkeep", ""),
    ]);
    let t = Templates::load(Some(dir.path())).expect("loads");
    assert_eq!(t.overridden(), vec!["ack_eligible.subject.hbs", "partials/footer_text.hbs"]);
    assert!(t.unchanged_overrides().is_empty());
    let r = t.render("ack_eligible", &ctx()).expect("render");
    assert_eq!(r.subject, "[311-2026-0042] Got it: Water <b>main</b> & financing");
    assert!(r.text.contains("Overridden footer"), "{}", r.text);
    // Everything else is still the built-in text.
    let builtin = Templates::load(None).expect("built-in");
    assert_eq!(
        t.render("ack_not_eligible", &ctx()).expect("r").subject,
        builtin.render("ack_not_eligible", &ctx()).expect("r").subject
    );
    assert_ne!(builtin.render("ack_eligible", &ctx()).expect("r").subject, r.subject);
    assert!(t.dir.display().to_string().contains(&dir.path().display().to_string()));
}

#[test]
fn a_broken_override_is_refused_with_its_name() {
    // Does not compile.
    let dir = folder(&[("reply.html.hbs", "<p>{{#if greeted}}unclosed</p>")]);
    let err = Templates::load(Some(dir.path())).expect_err("broken").to_string();
    let path = dir.path().join("reply.html.hbs").display().to_string();
    assert!(err.contains(&path) && err.contains("(override)"), "{err}");
    // Compiles, but names a field the context does not have: caught by the sample renders.
    let dir = folder(&[("staff_followup.txt.hbs", "{{offical_name}} wrote")]);
    let err = Templates::load(Some(dir.path())).expect_err("misspelt field").to_string();
    assert!(err.contains("staff_followup.txt.hbs (override)") && err.contains("offical_name"), "{err}");
}

#[test]
fn an_unknown_file_name_is_refused() {
    let dir = folder(&[
        ("ack_eligble.txt.hbs", "typo"),
        ("partials/footer.hbs", "typo"),
        ("reply.txt.hbs", "{{body_text}}"),
        ("web/index.hbs", "x"),
    ]);
    let err = Templates::load(Some(dir.path())).expect_err("unknown").to_string();
    assert!(err.contains("ack_eligble.txt.hbs, partials/footer.hbs, web/"), "{err}");
    assert!(!err.contains("reply.txt.hbs,"), "{err}");
}

#[test]
fn a_missing_override_folder_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let err = Templates::load(Some(missing.as_path())).expect_err("no dir").to_string();
    assert!(err.contains(&missing.display().to_string()) && err.contains("does not exist"), "{err}");
    // An empty folder overrides nothing.
    let t = Templates::load(Some(dir.path())).expect("empty folder");
    assert!(t.overridden().is_empty());
}

#[test]
fn the_config_field_is_accepted_as_it_is() {
    let none: Option<PathBuf> = None;
    assert!(Templates::load(&none).expect("built-in").overridden().is_empty());
    let dir = folder(&[("reply.subject.hbs", "{{tag}} Re: {{subject}}!")]);
    let some = Some(dir.path().to_path_buf());
    assert_eq!(Templates::load(&some).expect("loads").overridden(), vec!["reply.subject.hbs"]);
}

#[test]
fn export_writes_a_set_that_loads_back_identically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("mine");
    let written = export_builtin(&out, false).expect("export");
    assert_eq!(written.len(), TEMPLATE_NAMES.len() * 3 + PARTIAL_NAMES.len());
    assert!(written.iter().all(|p| p.is_file()));
    let exported = Templates::load(Some(out.as_path())).expect("loads back");
    assert_eq!(exported.overridden().len(), written.len());
    assert_eq!(exported.unchanged_overrides(), exported.overridden());
    let builtin = Templates::load(None).expect("built-in");
    for name in TEMPLATE_NAMES {
        for shape in crate::outbound::context::sample_shapes(name).expect("samples") {
            assert_eq!(exported.render(name, &shape).expect("r"), builtin.render(name, &shape).expect("r"), "{name}");
        }
    }
    // A second export refuses to overwrite, and writes nothing; --force replaces.
    std::fs::write(out.join("reply.txt.hbs"), "edited").expect("write");
    let err = export_builtin(&out, false).expect_err("exists").to_string();
    assert!(err.contains("refusing to overwrite") && err.contains("reply.txt.hbs"), "{err}");
    assert_eq!(std::fs::read_to_string(out.join("reply.txt.hbs")).expect("read"), "edited");
    export_builtin(&out, true).expect("force");
    assert_ne!(std::fs::read_to_string(out.join("reply.txt.hbs")).expect("read"), "edited");
}

/// A copy of the shipped templates, to edit in a test.
fn copy_shipped() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    export_builtin(dir.path(), false).expect("export");
    dir
}

#[test]
fn strict_mode_rejects_unknown_fields() {
    let t = Templates::load(None).expect("built-in");
    let err = t.render("ack_eligible", &serde_json::json!({"tag": "x"})).expect_err("strict").to_string();
    assert!(err.contains("ack_eligible.subject.hbs (built-in)"), "{err}");
}

#[test]
fn samples_render_every_shipped_mail_and_catch_a_misspelt_field() {
    let t = Templates::load(None).expect("templates load");
    // Every shipped mail has sample shapes, and every shape renders.
    let shapes: usize = super::builtin::TEMPLATE_NAMES
        .iter()
        .map(|n| crate::outbound::context::sample_shapes(n).map_or(0, |s| s.len()))
        .sum();
    assert!(super::builtin::TEMPLATE_NAMES.iter().all(|n| crate::outbound::context::sample_shapes(n).is_some()));
    assert_eq!(t.render_samples().expect("samples"), shapes);
    let dir = copy_shipped();
    let file = dir.path().join("response.txt.hbs");
    let text = std::fs::read_to_string(&file).expect("read").replace("{{body_text}}", "{{body_txt}}");
    std::fs::write(&file, text).expect("write");
    let t = Templates::compile(Some(dir.path())).expect("a misspelt field still compiles");
    let err = t.render_samples().expect_err("strict mode").to_string();
    assert!(err.contains("response.txt.hbs") && err.contains("body_txt"), "{err}");
    let err = Templates::load(Some(dir.path())).expect_err("load renders the samples").to_string();
    assert!(err.contains("response.txt.hbs") && err.contains("body_txt"), "{err}");
}
