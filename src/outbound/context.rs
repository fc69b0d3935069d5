//! The typed context of each kind of mail we send, and sample values of each for checking
//! templates.
//!
//! Owns: what a template may use (one struct per kind of mail; strict mode makes any other
//! field an error) and the sample shapes `Templates::render_samples` renders. Talks to:
//! [`super::markdown`] for the sample response body.

use serde::Serialize;

use super::markdown::markdown_to_html;

/// What every acknowledgement template can use.
#[derive(Debug, Clone, Serialize)]
pub struct AckContext {
    pub service_name: String,
    /// `311-2026-0042`
    pub tracking: String,
    /// `[311-2026-0042]`
    pub tag: String,
    /// The official's subject without leading Re:/Fwd: prefixes; `(no subject)` when empty.
    pub subject: String,
    pub official_name: String,
    pub official_email: String,
    /// `Dayton, OH` when a city was found.
    pub city: Option<String>,
    /// The promised response date, e.g. `Thursday, December 10, 2026`.
    pub due_date: String,
    pub response_days: u32,
    pub intake_address: String,
    /// Why the decision was made (for the not-eligible text).
    pub reason: String,
}

/// Staff notices (`staff_new_request`, `staff_followup`): everything staff need, in their thread.
#[derive(Debug, Clone, Serialize)]
pub struct StaffContext {
    pub service_name: String,
    pub tracking: String,
    pub tag: String,
    pub subject: String,
    /// `Dayton, OH`, or a description such as `unknown city` when none matched.
    pub city: String,
    pub official_name: String,
    pub official_email: String,
    /// Who wrote the mail staff are told of: the official, someone they copied, or an expert.
    pub from_name: String,
    pub from_email: String,
    pub due_date: String,
    pub status: String,
    pub eligibility: String,
    pub reason: String,
    /// The question (new requests) or what the follow-up adds (follow-ups).
    pub text: String,
    pub attachments: Vec<String>,
    /// The request's topics, as labels (suggested until staff confirm them).
    pub topics: Vec<String>,
    /// Whether staff confirmed them.
    pub topics_confirmed: bool,
    pub intake_address: String,
    pub help: String,
}

/// What staff send to the city (`reply`, `response`).
#[derive(Debug, Clone, Serialize)]
pub struct ResponseContext {
    pub service_name: String,
    pub tracking: String,
    pub tag: String,
    pub subject: String,
    pub official_name: String,
    /// The staff-written text, as written.
    pub body_text: String,
    /// The same text as HTML (Markdown rendered, raw HTML escaped). Insert with `{{{body_html}}}`.
    pub body_html: String,
    /// The text opens with its own greeting ([`opens_with_greeting`]), so the template leaves
    /// out its "Dear …".
    pub greeted: bool,
    pub staff_name: String,
    pub attachments: Vec<String>,
    pub intake_address: String,
}

/// A command a staff member sent that could not be applied (`staff_command_error`).
#[derive(Debug, Clone, Serialize)]
pub struct CommandErrorContext {
    pub service_name: String,
    /// `[311-2026-0042]`, or empty when no request matched.
    pub tag: String,
    pub subject: String,
    pub error: String,
    pub help: String,
    pub intake_address: String,
}

/// The note to a person whose mail was over the size limit (`too_large`).
#[derive(Debug, Clone, Serialize)]
pub struct TooLargeContext {
    pub service_name: String,
    pub subject: String,
    pub official_name: String,
    /// e.g. `31.4 MB`
    pub size: String,
    pub limit: String,
    pub intake_address: String,
}

/// Bytes as a person reads them: `31.4 MB`, `512 KB`.
pub fn human_bytes(n: u64) -> String {
    let mb = n as f64 / 1_000_000.0;
    if mb >= 1.0 { format!("{mb:.1} MB") } else { format!("{} KB", n.div_ceil(1000)) }
}

/// A new promised date, told to the official (`due_changed`).
#[derive(Debug, Clone, Serialize)]
pub struct DueChangedContext {
    pub service_name: String,
    pub tracking: String,
    pub tag: String,
    pub subject: String,
    pub official_name: String,
    /// The date promised before, e.g. `Thursday, January 14, 2027` (empty when none was).
    pub old_due_date: String,
    /// The new date, in the same words.
    pub due_date: String,
    /// Why, in the staff member's words.
    pub reason: String,
    pub staff_name: String,
    pub intake_address: String,
}

/// The introduction of an official to an expert (`referral_intro`), to both.
#[derive(Debug, Clone, Serialize)]
pub struct ReferralContext {
    pub service_name: String,
    pub tracking: String,
    pub tag: String,
    pub subject: String,
    pub official_name: String,
    /// The official's name as the subject line greets them (the name, or the address).
    pub official_first: String,
    pub official_email: String,
    /// `Dayton, OH`, or empty when the city is not known.
    pub city: String,
    pub expert_name: String,
    pub expert_email: String,
    pub expert_org: String,
    /// The question as the official wrote it.
    pub question: String,
    /// The staff member's note to both (may be empty).
    pub note: String,
    pub staff_name: String,
    pub intake_address: String,
}

/// A deadline reminder to the assignee, or to the staff address (`staff_reminder`).
#[derive(Debug, Clone, Serialize)]
pub struct ReminderContext {
    pub service_name: String,
    pub tracking: String,
    pub tag: String,
    pub subject: String,
    pub city: String,
    pub official_name: String,
    /// The staff member it is assigned to, or `nobody yet`.
    pub assignee: String,
    /// The promised date, e.g. `Tuesday, January 19, 2027`.
    pub due_date: String,
    /// `due in 2 business days`, `due today`, `overdue by 1 business day`.
    pub when: String,
    /// `remind_before`, `due_today` or `overdue`.
    pub kind: String,
    pub status: String,
    pub intake_address: String,
    pub help: String,
}

/// One line of the daily digest.
#[derive(Debug, Clone, Serialize)]
pub struct DigestLineContext {
    pub tracking: String,
    pub city: String,
    pub subject: String,
    pub assignee: String,
    pub when: String,
}

/// One section of the daily digest, e.g. `Overdue`.
#[derive(Debug, Clone, Serialize)]
pub struct DigestSectionContext {
    pub title: String,
    pub count: usize,
    pub lines: Vec<DigestLineContext>,
}

/// The daily digest to the staff address (`staff_digest`).
#[derive(Debug, Clone, Serialize)]
pub struct DigestContext {
    pub service_name: String,
    /// e.g. `Wednesday, January 20, 2027`.
    pub date: String,
    /// e.g. `2 overdue, 1 due soon, 1 in review`.
    pub summary: String,
    pub sections: Vec<DigestSectionContext>,
    pub intake_address: String,
}

/// One headline figure of the monthly report, e.g. `Questions received` and `12`.
#[derive(Debug, Clone, Serialize)]
pub struct ReportFigureContext {
    pub label: String,
    pub value: String,
    /// How it is counted, in a few words.
    pub note: String,
}

/// One row of a count table of the monthly report (a city, a topic, an outcome).
#[derive(Debug, Clone, Serialize)]
pub struct ReportCountContext {
    pub name: String,
    pub count: i64,
    /// Of the month's questions, e.g. `25%`.
    pub share: String,
}

/// A request still open and past due at the end of the month.
#[derive(Debug, Clone, Serialize)]
pub struct ReportOverdueContext {
    pub tracking: String,
    pub city: String,
    pub subject: String,
    /// `2026-11-23`
    pub due_date: String,
    pub days_over: i64,
}

/// One month of the report's trend.
#[derive(Debug, Clone, Serialize)]
pub struct ReportTrendContext {
    /// `Nov 2026`
    pub month: String,
    pub received: i64,
    pub answered: i64,
}

/// One chart of the report: `src` is `cid:…` in the mail and a `data:` URI in a saved file.
#[derive(Debug, Clone, Serialize)]
pub struct ReportChartContext {
    pub title: String,
    pub alt: String,
    pub src: String,
}

/// The monthly report (`monthly_report`), mailed to the admin staff and written by
/// `intake311 report --format html|text`.
#[derive(Debug, Clone, Serialize)]
pub struct ReportContext {
    pub service_name: String,
    /// `November 2026`
    pub month: String,
    /// `2026-11`
    pub month_key: String,
    /// `12 questions, 9 responses, 1 referral, 2 overdue at month end`
    pub summary: String,
    /// The time zone the days are taken in, e.g. `America/Chicago`.
    pub timezone: String,
    pub figures: Vec<ReportFigureContext>,
    pub eligibility: Vec<ReportCountContext>,
    pub cities: Vec<ReportCountContext>,
    pub topics: Vec<ReportCountContext>,
    /// Business days to response: `name` is the number of days, only days with requests.
    pub days: Vec<ReportCountContext>,
    pub overdue: Vec<ReportOverdueContext>,
    pub first_time_cities: Vec<String>,
    pub trend: Vec<ReportTrendContext>,
    pub charts: ReportChartsContext,
    pub intake_address: String,
}

/// The report's three charts, each shown beside its table.
#[derive(Debug, Clone, Serialize)]
pub struct ReportChartsContext {
    pub topics: ReportChartContext,
    pub days: ReportChartContext,
    pub trend: ReportChartContext,
}

/// Replies to administrators' commands by mail (`admin_reply`).
#[derive(Debug, Clone, Serialize)]
pub struct AdminContext {
    pub service_name: String,
    /// Their subject, without reply prefixes.
    pub subject: String,
    /// One line: what happened, e.g. `Dry run: nothing has changed yet`.
    pub title: String,
    /// Preformatted details (a diff, errors, instructions).
    pub body: String,
    pub intake_address: String,
}

/// The shapes of context `name` is rendered with when templates are checked (an
/// acknowledgement with and without a city, a reply with and without the staff member's own
/// greeting, a command error with and without a request); `None` for a name without samples.
pub(crate) fn sample_shapes(name: &str) -> Option<Vec<serde_json::Value>> {
    let s = |v: &str| v.to_string();
    let ack = AckContext {
        service_name: s("311 for Cities"),
        tracking: s("311-2026-0042"),
        tag: s("[311-2026-0042]"),
        subject: s("Water main financing"),
        official_name: s("Jane Rivera"),
        official_email: s("jane@dayton.gov"),
        city: Some(s("Dayton, OH")),
        due_date: s("Thursday, December 10, 2026"),
        response_days: 10,
        intake_address: s("intake@311.test"),
        reason: s("domain dayton.gov"),
    };
    let staff = StaffContext {
        service_name: ack.service_name.clone(),
        tracking: ack.tracking.clone(),
        tag: ack.tag.clone(),
        subject: ack.subject.clone(),
        city: s("Dayton, OH"),
        official_name: ack.official_name.clone(),
        official_email: ack.official_email.clone(),
        from_name: ack.official_name.clone(),
        from_email: ack.official_email.clone(),
        due_date: ack.due_date.clone(),
        status: s("acknowledged"),
        eligibility: s("eligible"),
        reason: ack.reason.clone(),
        text: s("What do peer cities do?"),
        attachments: vec![s("plan.pdf")],
        topics: vec![s("Infrastructure (water, roads)")],
        topics_confirmed: false,
        intake_address: ack.intake_address.clone(),
        help: s("#note, #reply, #respond"),
    };
    let response = |greeted: bool| ResponseContext {
        service_name: ack.service_name.clone(),
        tracking: ack.tracking.clone(),
        tag: ack.tag.clone(),
        subject: ack.subject.clone(),
        official_name: ack.official_name.clone(),
        body_text: s("Peer cities **share** contracts."),
        body_html: markdown_to_html("Peer cities **share** contracts."),
        greeted,
        staff_name: s("Ana Staff"),
        attachments: vec![s("memo.pdf")],
        intake_address: ack.intake_address.clone(),
    };
    let command_error = |tag: &str| CommandErrorContext {
        service_name: ack.service_name.clone(),
        tag: s(tag),
        subject: ack.subject.clone(),
        error: s("unknown command #frob"),
        help: s("#note, #reply, #respond"),
        intake_address: ack.intake_address.clone(),
    };
    let too_large = TooLargeContext {
        service_name: ack.service_name.clone(),
        subject: ack.subject.clone(),
        official_name: ack.official_name.clone(),
        size: s("31.5 MB"),
        limit: s("25.0 MB"),
        intake_address: ack.intake_address.clone(),
    };
    let admin = AdminContext {
        service_name: ack.service_name.clone(),
        subject: s("cities"),
        title: s("Dry run: nothing has changed yet"),
        body: s("+ Dayton, OH"),
        intake_address: ack.intake_address.clone(),
    };
    // Handlebars renders a context through its JSON value anyway; as values, every shape of
    // a mail fits one list. (These structs always serialize.)
    fn json<T: Serialize>(c: &T) -> serde_json::Value {
        serde_json::to_value(c).unwrap_or_default()
    }
    let shapes = match name {
        "ack_eligible" | "ack_not_eligible" | "ack_unknown_city" | "ack_received" | "followup_added" => {
            vec![json(&ack), json(&AckContext { city: None, ..ack.clone() })]
        }
        "staff_new_request" | "staff_followup" | "staff_delivery_failed" | "staff_mail_held" => vec![json(&staff)],
        "reply" | "response" => vec![json(&response(false)), json(&response(true))],
        "referral_intro" => {
            let referral = ReferralContext {
                service_name: ack.service_name.clone(),
                tracking: ack.tracking.clone(),
                tag: ack.tag.clone(),
                subject: ack.subject.clone(),
                official_name: ack.official_name.clone(),
                official_first: ack.official_name.clone(),
                official_email: ack.official_email.clone(),
                city: s("Dayton, OH"),
                expert_name: s("Dr. Ana Lee"),
                expert_email: s("lee@water.test"),
                expert_org: s("Water Institute"),
                question: s("How do peer cities finance lead line replacement?"),
                note: s("Dr. Lee ran Flint's programme."),
                staff_name: s("Ana Staff"),
                intake_address: ack.intake_address.clone(),
            };
            let bare = ReferralContext {
                official_name: String::new(),
                city: String::new(),
                expert_org: String::new(),
                note: String::new(),
                staff_name: String::new(),
                ..referral.clone()
            };
            vec![json(&referral), json(&bare)]
        }
        "staff_reminder" => {
            let reminder = ReminderContext {
                service_name: ack.service_name.clone(),
                tracking: ack.tracking.clone(),
                tag: ack.tag.clone(),
                subject: ack.subject.clone(),
                city: s("Dayton, OH"),
                official_name: ack.official_name.clone(),
                assignee: s("ana@311.test"),
                due_date: ack.due_date.clone(),
                when: s("due in 2 business days"),
                kind: s("remind_before"),
                status: s("in_progress"),
                intake_address: ack.intake_address.clone(),
                help: s("#note, #reply, #respond, #due"),
            };
            vec![json(&reminder)]
        }
        "staff_digest" => {
            let line = DigestLineContext {
                tracking: ack.tracking.clone(),
                city: s("Dayton, OH"),
                subject: ack.subject.clone(),
                assignee: s("unassigned"),
                when: s("overdue by 2 business days"),
            };
            let digest = DigestContext {
                service_name: ack.service_name.clone(),
                date: s("Wednesday, January 20, 2027"),
                summary: s("1 overdue"),
                sections: vec![DigestSectionContext { title: s("Overdue"), count: 1, lines: vec![line] }],
                intake_address: ack.intake_address.clone(),
            };
            vec![json(&digest)]
        }
        "due_changed" => {
            let due = DueChangedContext {
                service_name: ack.service_name.clone(),
                tracking: ack.tracking.clone(),
                tag: ack.tag.clone(),
                subject: ack.subject.clone(),
                official_name: ack.official_name.clone(),
                old_due_date: ack.due_date.clone(),
                due_date: s("Wednesday, February 3, 2027"),
                reason: s("We are waiting for the state's data."),
                staff_name: s("Ana Staff"),
                intake_address: ack.intake_address.clone(),
            };
            vec![
                json(&due),
                json(&DueChangedContext { old_due_date: String::new(), official_name: String::new(), ..due.clone() }),
            ]
        }
        "staff_command_error" => vec![json(&command_error(&ack.tag)), json(&command_error(""))],
        "too_large" => vec![json(&too_large)],
        "admin_reply" => vec![json(&admin)],
        "monthly_report" => {
            let count =
                |name: &str, count: i64, share: &str| ReportCountContext { name: s(name), count, share: s(share) };
            let chart =
                |title: &str, src: &str| ReportChartContext { title: s(title), alt: s("housing: 2"), src: s(src) };
            let report = ReportContext {
                service_name: ack.service_name.clone(),
                month: s("November 2026"),
                month_key: s("2026-11"),
                summary: s("4 questions, 2 responses, 1 referral, 1 overdue at month end"),
                timezone: s("America/Chicago"),
                figures: vec![ReportFigureContext {
                    label: s("Questions received"),
                    value: s("4"),
                    note: s("arrived in the month"),
                }],
                eligibility: vec![count("eligible", 3, "75%"), count("unknown", 1, "25%")],
                cities: vec![count("Dayton, OH", 3, "75%"), count("unknown city", 1, "25%")],
                topics: vec![count("housing", 2, "50%"), count("(no topic)", 2, "50%")],
                days: vec![count("3", 2, "67%"), count("12", 1, "33%")],
                overdue: vec![ReportOverdueContext {
                    tracking: ack.tracking.clone(),
                    city: s("Dayton, OH"),
                    subject: ack.subject.clone(),
                    due_date: s("2026-11-23"),
                    days_over: 5,
                }],
                first_time_cities: vec![s("Dayton, OH")],
                trend: vec![ReportTrendContext { month: s("Nov 2026"), received: 4, answered: 3 }],
                charts: ReportChartsContext {
                    topics: chart("Requests by topic, November 2026", "cid:topics@311.test"),
                    days: chart("Business days to response, November 2026", "cid:days@311.test"),
                    trend: chart("The last 12 months, Dec 2025 to Nov 2026", "data:image/png;base64,iVBORw0KGgo="),
                },
                intake_address: ack.intake_address.clone(),
            };
            let empty = ReportContext {
                eligibility: vec![],
                cities: vec![],
                topics: vec![],
                days: vec![],
                overdue: vec![],
                first_time_cities: vec![],
                ..report.clone()
            };
            vec![json(&report), json(&empty)]
        }
        _ => return None,
    };
    Some(shapes)
}
