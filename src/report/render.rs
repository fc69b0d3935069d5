//! The report's shapes: JSON (the [`Figures`] as they are), CSV (one small table per figure,
//! for a spreadsheet) and the context of the `monthly_report` template, whose HTML is both the
//! mail (charts as `cid:` parts) and the file `report --format html` writes (charts as `data:`
//! URIs).
//!
//! Owns: the CSV layout and the words of the headline figures. Talks to: [`super::Figures`],
//! [`super::charts::Chart`] and [`crate::outbound::context`].

use base64::Engine as _;

use super::Figures;
use super::charts::Chart;
use crate::outbound::context::{
    ReportChartContext, ReportChartsContext, ReportContext, ReportCountContext, ReportFigureContext,
    ReportOverdueContext, ReportTrendContext,
};

/// The figures as pretty-printed JSON: [`Figures`] field by field.
pub fn json(f: &Figures) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(f)? + "\n")
}

/// `75%` (rounded), or `–` without a denominator.
fn percent(part: i64, of: i64) -> String {
    if of <= 0 { "–".to_string() } else { format!("{}%", (part as f64 * 100.0 / of as f64).round() as i64) }
}

/// `3`, `3.5`, or `–`.
fn days(v: Option<f64>) -> String {
    match v {
        Some(d) if d.fract() == 0.0 => format!("{d:.0}"),
        Some(d) => format!("{d:.1}"),
        None => "–".to_string(),
    }
}

/// The headline figures: label, value and how it is counted.
fn headline(f: &Figures) -> Vec<(&'static str, String, String)> {
    let d = &f.days_to_response;
    let on_time = match f.on_time.rate {
        Some(_) => format!("{} ({} of {})", percent(f.on_time.on_time, f.on_time.of), f.on_time.on_time, f.on_time.of),
        None => "–".to_string(),
    };
    vec![
        ("Questions received", f.received.to_string(), "requests that arrived in the month".into()),
        ("Responses sent", f.responses_sent.to_string(), "each response mailed in the month".into()),
        ("Referrals made", f.referrals_sent.to_string(), "introductions to an expert in the month".into()),
        (
            "Resolved by a response or referral",
            d.requests.to_string(),
            "requests resolved in the month, the figures below are taken over them".into(),
        ),
        ("Median business days to response", days(d.median), "from arrival to the response or referral".into()),
        ("90th percentile business days to response", days(d.p90.map(|v| v as f64)), "9 in 10 took no longer".into()),
        ("On time against the promised date", on_time, "resolved on or before the due date".into()),
        ("Overdue at month end", f.overdue.len().to_string(), "still open and past due when the month ended".into()),
        (
            "Cities asking for the first time",
            f.first_time_cities.len().to_string(),
            "no request before this month".into(),
        ),
    ]
}

/// One CSV table: its title, its header and its rows.
type Table = (&'static str, Vec<&'static str>, Vec<Vec<String>>);

/// The figures as CSV for a spreadsheet: one small table per figure, one after another, each a
/// title line, a header line and its rows, with an empty line between tables.
pub fn csv(f: &Figures) -> anyhow::Result<String> {
    let mut tables: Vec<Table> = Vec::new();
    let mut summary = vec![vec!["month".to_string(), f.month.to_string()]];
    let d = &f.days_to_response;
    let opt = |v: Option<String>| v.unwrap_or_default();
    summary.extend([
        vec!["questions received".into(), f.received.to_string()],
        vec!["responses sent".into(), f.responses_sent.to_string()],
        vec!["referrals made".into(), f.referrals_sent.to_string()],
        vec!["resolved by response or referral".into(), d.requests.to_string()],
        vec!["median business days to response".into(), opt(d.median.map(|m| m.to_string()))],
        vec!["90th percentile business days to response".into(), opt(d.p90.map(|p| p.to_string()))],
        vec!["resolved on time".into(), f.on_time.on_time.to_string()],
        vec!["resolved with a due date".into(), f.on_time.of.to_string()],
        vec![
            "on-time rate".into(),
            if f.on_time.of > 0 { percent(f.on_time.on_time, f.on_time.of) } else { String::new() },
        ],
        vec!["overdue at month end".into(), f.overdue.len().to_string()],
        vec!["cities asking for the first time".into(), f.first_time_cities.len().to_string()],
    ]);
    tables.push(("Summary", vec!["figure", "value"], summary));
    let e = &f.eligibility;
    tables.push((
        "Eligibility",
        vec!["outcome", "requests"],
        [("eligible", e.eligible), ("not_eligible", e.not_eligible), ("unknown", e.unknown)]
            .iter()
            .map(|(k, v)| vec![k.to_string(), v.to_string()])
            .collect(),
    ));
    let counts = |c: &[super::Count]| c.iter().map(|c| vec![c.name.clone(), c.count.to_string()]).collect();
    tables.push(("Requests by city", vec!["city", "requests"], counts(&f.by_city)));
    tables.push(("Requests by topic", vec!["topic", "requests"], counts(&f.by_topic)));
    tables.push((
        "Business days to response",
        vec!["business days", "requests"],
        d.histogram.iter().map(|(days, n)| vec![days.to_string(), n.to_string()]).collect(),
    ));
    tables.push((
        "Overdue at month end",
        vec!["tracking", "city", "subject", "due date", "business days over"],
        f.overdue
            .iter()
            .map(|o| {
                vec![o.tracking.clone(), o.city.clone(), o.subject.clone(), o.due_date.clone(), o.days_over.to_string()]
            })
            .collect(),
    ));
    tables.push((
        "Cities asking for the first time",
        vec!["city"],
        f.first_time_cities.iter().map(|c| vec![c.clone()]).collect(),
    ));
    tables.push((
        "Last 12 months",
        vec!["month", "questions received", "responses and referrals"],
        f.trend.iter().map(|t| vec![t.month.to_string(), t.received.to_string(), t.answered.to_string()]).collect(),
    ));
    let mut out = String::new();
    for (i, (title, header, rows)) in tables.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
        w.write_record([title])?;
        w.write_record(header)?;
        for row in rows {
            w.write_record(row)?;
        }
        out.push_str(&String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))?)?);
    }
    Ok(out)
}

/// A PNG as a `data:` URI, for a standalone HTML file.
pub fn data_uri(png: &[u8]) -> String {
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))
}

/// The context of the `monthly_report` template; `src` gives each chart's image address
/// (`cid:…` for mail, [`data_uri`] for a file).
pub fn context(
    f: &Figures,
    charts: &[Chart],
    service_name: &str,
    intake_address: &str,
    src: impl Fn(&Chart) -> String,
) -> anyhow::Result<ReportContext> {
    let chart = |name: &str| -> anyhow::Result<ReportChartContext> {
        let c = charts.iter().find(|c| c.name == name).ok_or_else(|| anyhow::anyhow!("no {name} chart"))?;
        Ok(ReportChartContext { title: c.title.clone(), alt: c.alt.clone(), src: src(c) })
    };
    let of = |c: &[super::Count]| -> Vec<ReportCountContext> {
        c.iter()
            .map(|c| ReportCountContext { name: c.name.clone(), count: c.count, share: percent(c.count, f.received) })
            .collect()
    };
    let e = &f.eligibility;
    let eligibility = [("eligible", e.eligible), ("not eligible", e.not_eligible), ("city unknown", e.unknown)]
        .iter()
        .filter(|(_, n)| f.received > 0 || *n > 0)
        .map(|(name, n)| ReportCountContext { name: name.to_string(), count: *n, share: percent(*n, f.received) })
        .collect();
    let resolved = f.days_to_response.requests;
    Ok(ReportContext {
        service_name: service_name.to_string(),
        month: f.label.clone(),
        month_key: f.month.to_string(),
        summary: f.summary(),
        timezone: f.timezone.clone(),
        figures: headline(f)
            .into_iter()
            .map(|(label, value, note)| ReportFigureContext { label: label.to_string(), value, note })
            .collect(),
        eligibility,
        cities: of(&f.by_city),
        topics: of(&f.by_topic),
        days: f
            .days_to_response
            .histogram
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(days, n)| ReportCountContext { name: days.to_string(), count: *n, share: percent(*n, resolved) })
            .collect(),
        overdue: f
            .overdue
            .iter()
            .map(|o| ReportOverdueContext {
                tracking: o.tracking.clone(),
                city: o.city.clone(),
                subject: o.subject.clone(),
                due_date: o.due_date.clone(),
                days_over: o.days_over,
            })
            .collect(),
        first_time_cities: f.first_time_cities.clone(),
        trend: f
            .trend
            .iter()
            .map(|t| ReportTrendContext { month: t.month.short_label(), received: t.received, answered: t.answered })
            .collect(),
        charts: ReportChartsContext { topics: chart("topics")?, days: chart("days")?, trend: chart("trend")? },
        intake_address: intake_address.to_string(),
    })
}
