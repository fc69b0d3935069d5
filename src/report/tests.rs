//! The figures' rules, the CSV and JSON shapes, and charts whose pixels show the data.

use chrono::{NaiveDate, TimeZone as _};
use chrono_tz::Tz;

use super::charts::{self, ANSWERED_LINE, DAYS_BAR, HEIGHT, RECEIVED_LINE, TOPIC_BAR, WIDTH};
use super::*;
use crate::store::{CityFirstRow, TopicRow};

const TZ: Tz = chrono_tz::America::Chicago;

fn d(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn nov() -> Month {
    "2026-11".parse().expect("month")
}

/// Weekends and Thanksgiving (Thursday 26 November 2026).
fn cal() -> Calendar {
    Calendar::from_holidays([(d("2026-11-26"), "Thanksgiving Day".to_string())])
}

fn row(id: i64, city: Option<&str>, received_on: &str, due: &str) -> RequestRow {
    RequestRow {
        city_id: city.map(|_| id),
        city: city.map(str::to_string),
        official_email: "mayor@city.test".into(),
        eligibility: if city.is_some() { Eligibility::Eligible } else { Eligibility::Unknown },
        due_date: (!due.is_empty()).then(|| due.to_string()),
        received_on: received_on.into(),
        ..crate::store::sample_row(id, 2026)
    }
}

fn resolved(mut r: RequestRow, on: &str, by: &str, days: i64) -> RequestRow {
    r.resolved_on = Some(on.into());
    r.resolved_by = by.into();
    r.resolution_days = Some(days);
    r.status = if by == "referral" { RequestStatus::Referred } else { RequestStatus::Responded };
    r
}

fn topic(request_id: i64, topic: &str, source: &str) -> TopicRow {
    TopicRow { request_id, topic: topic.into(), source: source.into() }
}

/// Unix ms of a local moment in Chicago.
fn local_ms(s: &str) -> i64 {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("moment");
    TZ.from_local_datetime(&t).earliest().expect("exists").timestamp_millis()
}

#[test]
fn months_parse_strictly_and_know_their_days() {
    let m = nov();
    assert_eq!(m.to_string(), "2026-11");
    assert_eq!((m.first_day(), m.last_day()), (d("2026-11-01"), d("2026-11-30")));
    assert_eq!(m.label(), "November 2026");
    assert_eq!(
        "2026-12".parse::<Month>().map(|m| (m.next().to_string(), m.prev().to_string())),
        Ok(("2027-01".into(), "2026-11".into()))
    );
    assert_eq!("2027-01".parse::<Month>().map(|m| m.prev().to_string()), Ok("2026-12".into()));
    assert_eq!("2028-02".parse::<Month>().map(|m| m.last_day()), Ok(d("2028-02-29")));
    for bad in ["2026-13", "2026-00", "2026-1", "26-11", "2026-11-01", "November", ""] {
        let e = bad.parse::<Month>().expect_err(bad);
        assert!(e.to_string().contains("is not a month (write YYYY-MM"), "{e}");
    }
    assert!(m.contains("2026-11-30") && !m.contains("2026-12-01") && !m.contains("2026-11") && !m.contains(""));
}

#[test]
fn a_month_runs_from_local_midnight_to_local_midnight() {
    // 1 November 2026 starts on daylight time (UTC-5) and ends on standard time (UTC-6).
    let (from, to) = nov().bounds_ms(TZ);
    assert_eq!(from, chrono::Utc.with_ymd_and_hms(2026, 11, 1, 5, 0, 0).unwrap().timestamp_millis());
    assert_eq!(to, chrono::Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap().timestamp_millis());
    // A response at 21:00 on 30 November in Chicago is 03:00 on 1 December UTC: still November.
    let rows = ReportRows {
        responses_in_window: vec![
            local_ms("2026-11-30 21:00"),
            local_ms("2026-12-01 00:00"),
            local_ms("2026-10-31 23:59"),
        ],
        ..Default::default()
    };
    let f = Figures::compute(&rows, nov(), TZ, &cal());
    assert_eq!(f.responses_sent, 1);
    let oct = f.trend.iter().find(|t| t.month.to_string() == "2026-10").expect("October");
    assert_eq!((oct.answered, f.trend.last().map(|t| t.answered)), (1, Some(1)));
}

#[test]
fn median_and_nearest_rank_90th_percentile() {
    assert_eq!((median(&[]), percentile(&[], 90)), (None, None));
    assert_eq!((median(&[4]), percentile(&[4], 90)), (Some(4.0), Some(4)));
    assert_eq!(median(&[1, 2, 3, 4]), Some(2.5));
    assert_eq!(median(&[1, 2, 9]), Some(2.0));
    let ten: Vec<i64> = (1..=10).collect();
    assert_eq!(percentile(&ten, 90), Some(9));
    let twenty: Vec<i64> = (1..=20).collect();
    assert_eq!(percentile(&twenty, 90), Some(18));
    assert_eq!(percentile(&[1, 2], 90), Some(2));
    assert_eq!(percentile(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 30], 90), Some(10));
}

#[test]
fn a_request_counts_under_its_confirmed_topics_else_its_suggested_ones() {
    assert_eq!(topics_of([("housing", "suggested"), ("finance", "staff")]), ["finance"]);
    assert_eq!(topics_of([("housing", "suggested"), ("finance", "suggested")]), ["finance", "housing"]);
    assert_eq!(topics_of([("housing", "staff"), ("housing", "staff")]), ["housing"]);
    assert_eq!(topics_of([]), [NO_TOPIC]);
}

/// November 2026 in four cities (one of them unknown), with every kind of request the figures
/// tell apart.
fn november() -> ReportRows {
    let dayton = Some("Dayton, OH");
    let lincoln = Some("Lincoln, WI");
    let mut ineligible = row(5, Some("Gary, IN"), "2026-11-12", "");
    ineligible.status = RequestStatus::Ineligible;
    ineligible.eligibility = Eligibility::NotEligible;
    let mut needs_city = row(6, None, "2026-11-13", "2026-11-20");
    needs_city.status = RequestStatus::NeedsCity;
    let mut waiting = row(8, dayton, "2026-10-01", "2026-10-15");
    waiting.status = RequestStatus::WaitingOnCity;
    waiting.clock_paused_on = Some("2026-10-10".into());
    let requests = vec![
        // Received in November and resolved in it: on time (3 days), late (12 days), a referral.
        resolved(row(1, dayton, "2026-11-02", "2026-11-16"), "2026-11-05", "response", 3),
        resolved(row(2, dayton, "2026-11-03", "2026-11-17"), "2026-11-19", "response", 12),
        resolved(row(3, lincoln, "2026-11-04", "2026-11-18"), "2026-11-09", "referral", 3),
        // Received in November, still open, due in December: not overdue.
        row(4, lincoln, "2026-11-23", "2026-12-08"),
        ineligible,
        needs_city,
        // Received in October: resolved in November (counts in the days), overdue at the end of
        // November (due 20 November), answered in December (overdue then too), closed in
        // November without an answer (no days), and waiting on the city (not overdue).
        resolved(row(7, dayton, "2026-10-20", "2026-11-03"), "2026-11-02", "response", 9),
        waiting,
        row(9, dayton, "2026-11-06", "2026-11-20"),
        resolved(row(10, dayton, "2026-10-26", "2026-11-30"), "2026-12-02", "response", 25),
        resolved(row(11, dayton, "2026-10-26", "2026-11-09"), "2026-11-10", "closed", 11),
    ];
    ReportRows {
        requests,
        topics: vec![
            topic(1, "housing", "suggested"),
            topic(1, "finance", "staff"),
            topic(2, "housing", "suggested"),
            topic(2, "technology", "suggested"),
            topic(3, "housing", "staff"),
            topic(7, "governance", "staff"),
        ],
        city_first: vec![
            CityFirstRow { city_id: 1, city: "Dayton, OH".into(), first_received_on: "2026-03-02".into() },
            CityFirstRow { city_id: 3, city: "Lincoln, WI".into(), first_received_on: "2026-11-04".into() },
            CityFirstRow { city_id: 5, city: "Gary, IN".into(), first_received_on: "2026-11-12".into() },
        ],
        received_in_window: ["2026-11-02", "2026-11-03", "2026-11-04", "2026-10-20", "2025-12-01"]
            .map(String::from)
            .to_vec(),
        responses_in_window: vec![
            local_ms("2026-11-05 09:00"),
            local_ms("2026-11-19 16:00"),
            local_ms("2026-10-02 10:00"),
        ],
        referrals_in_window: vec!["2026-11-09".into(), "2026-09-30".into()],
    }
}

#[test]
fn the_figures_of_a_month_follow_their_rules() {
    let f = Figures::compute(&november(), nov(), TZ, &cal());
    // Received: 1, 2, 3, 4, 5, 6, 9.
    assert_eq!(f.received, 7);
    assert_eq!(f.eligibility, EligibilityCounts { eligible: 5, not_eligible: 1, unknown: 1 });
    fn counts(c: &[Count]) -> Vec<(&str, i64)> {
        c.iter().map(|c| (c.name.as_str(), c.count)).collect()
    }
    assert_eq!(counts(&f.by_city), [("Dayton, OH", 3), ("Lincoln, WI", 2), ("Gary, IN", 1), (UNKNOWN_CITY, 1)]);
    // 1 counts under finance only (staff confirmed it), 2 under both suggestions, 3 under
    // housing; 4, 5, 6 and 9 have none; 7 arrived in October.
    assert_eq!(counts(&f.by_topic), [(NO_TOPIC, 4), ("housing", 2), ("finance", 1), ("technology", 1)]);
    assert_eq!((f.responses_sent, f.referrals_sent), (2, 1));
    // Resolved in November by a response or referral: 1 (3), 2 (12), 3 (3), 7 (9); not 11
    // (closed) nor 10 (December).
    let days = &f.days_to_response;
    assert_eq!(days.requests, 4);
    assert_eq!((days.median, days.p90), (Some(6.0), Some(12)));
    assert_eq!(days.histogram.len(), 13);
    assert_eq!(
        (days.histogram[3], days.histogram[9], days.histogram[12], days.histogram[0]),
        ((3, 2), (9, 1), (12, 1), (0, 0))
    );
    // On time: 1, 3 and 7 (resolved on or before the due date); 2 was late.
    assert_eq!((f.on_time.on_time, f.on_time.of, f.on_time.rate), (3, 4, Some(0.75)));
    // Overdue when November ended: 9 (due 20 November) and 10 (due 30 November, answered in
    // December); not 6 (no city), 8 (waiting on the city), 4 (due in December), 11 (closed).
    // Counted on Tuesday 1 December: 9 is 6 business days over (Thanksgiving is not one).
    let overdue: Vec<(&str, &str, i64)> =
        f.overdue.iter().map(|o| (o.tracking.as_str(), o.due_date.as_str(), o.days_over)).collect();
    assert_eq!(overdue, [("311-2026-0009", "2026-11-20", 6), ("311-2026-0010", "2026-11-30", 1)]);
    assert_eq!(f.overdue[0].city, "Dayton, OH");
    assert_eq!(f.first_time_cities, ["Gary, IN", "Lincoln, WI"]);
    // The trend: twelve months, December 2025 to November 2026.
    assert_eq!(f.trend.len(), 12);
    assert_eq!((f.trend[0].month.to_string(), f.trend[0].received), ("2025-12".to_string(), 1));
    let by = |m: &str| f.trend.iter().find(|t| t.month.to_string() == m).map(|t| (t.received, t.answered));
    assert_eq!(by("2026-11"), Some((3, 3)));
    assert_eq!(by("2026-10"), Some((1, 1)));
    assert_eq!(by("2026-09"), Some((0, 1)));
    assert_eq!(f.summary(), "7 questions, 2 responses, 1 referral, 2 overdue at month end");
    assert!(!f.is_empty());
    assert!(Figures::compute(&ReportRows::default(), nov(), TZ, &cal()).is_empty());
}

#[test]
fn csv_has_one_table_per_figure_and_json_every_field() {
    let f = Figures::compute(&november(), nov(), TZ, &cal());
    let text = render::csv(&f).expect("csv");
    let tables: Vec<&str> = text.split("\n\n").collect();
    let titles: Vec<&str> = tables.iter().map(|t| t.lines().next().unwrap_or_default()).collect();
    assert_eq!(
        titles,
        [
            "Summary",
            "Eligibility",
            "Requests by city",
            "Requests by topic",
            "Business days to response",
            "Overdue at month end",
            "Cities asking for the first time",
            "Last 12 months"
        ]
    );
    let table = |title: &str| -> Vec<Vec<String>> {
        let t = tables.iter().find(|t| t.starts_with(title)).expect(title);
        let mut r = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(t.as_bytes());
        r.records().map(|rec| rec.expect("record").iter().map(str::to_string).collect()).skip(1).collect()
    };
    let summary = table("Summary");
    assert_eq!(summary[0], ["figure", "value"]);
    let value = |k: &str| summary.iter().find(|r| r[0] == k).map(|r| r[1].clone()).expect(k);
    assert_eq!(value("month"), "2026-11");
    assert_eq!(value("questions received"), "7");
    assert_eq!(value("median business days to response"), "6");
    assert_eq!(value("90th percentile business days to response"), "12");
    assert_eq!(value("on-time rate"), "75%");
    assert_eq!(value("overdue at month end"), "2");
    assert_eq!(table("Requests by city")[1], ["Dayton, OH", "3"], "a comma inside a field is quoted");
    let overdue = table("Overdue at month end");
    assert_eq!(overdue[0], ["tracking", "city", "subject", "due date", "business days over"]);
    assert_eq!(overdue[1], ["311-2026-0009", "Dayton, OH", "Question 9", "2026-11-20", "6"]);
    assert_eq!(table("Last 12 months").len(), 13);
    assert!(text.contains("\"Dayton, OH\""), "{text}");

    let json: serde_json::Value = serde_json::from_str(&render::json(&f).expect("json")).expect("parses");
    assert_eq!(json["month"], "2026-11");
    assert_eq!(json["received"], 7);
    assert_eq!(json["eligibility"]["not_eligible"], 1);
    assert_eq!(json["by_city"][0], serde_json::json!({"name": "Dayton, OH", "count": 3}));
    assert_eq!(json["by_topic"][0]["name"], NO_TOPIC);
    assert_eq!(json["days_to_response"]["median"], 6.0);
    assert_eq!(json["days_to_response"]["p90"], 12);
    assert_eq!(json["on_time"]["rate"], 0.75);
    assert_eq!(json["overdue"][0]["days_over"], 6);
    assert_eq!(json["first_time_cities"], serde_json::json!(["Gary, IN", "Lincoln, WI"]));
    assert_eq!(json["trend"].as_array().map(Vec::len), Some(12));
    assert_eq!(json["trend"][11], serde_json::json!({"month": "2026-11", "received": 3, "answered": 3}));
}

/// The chart's pixels, decoded from its PNG, as RGB triples by row.
fn pixels(png: &[u8]) -> Vec<Vec<[u8; 3]>> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf[..info.buffer_size()]
        .chunks(info.line_size)
        .map(|line| line.chunks(3).map(|p| [p[0], p[1], p[2]]).collect())
        .collect()
}

fn is(c: plotters::style::RGBColor) -> impl Fn(&[u8; 3]) -> bool {
    move |p| *p == [c.0, c.1, c.2]
}

/// Runs of consecutive indices where `count(i) > 0`, each as (length of the longest line in it).
fn bands(counts: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut current: Option<usize> = None;
    for &n in counts {
        match (n > 0, current) {
            (true, c) => current = Some(c.unwrap_or(0).max(n)),
            (false, Some(c)) => {
                out.push(c);
                current = None;
            }
            (false, None) => {}
        }
    }
    out.extend(current);
    out
}

#[test]
fn the_topic_bars_are_as_long_as_their_counts() {
    let f = Figures::compute(&november(), nov(), TZ, &cal());
    let chart = charts::draw_all(&f).expect("charts").into_iter().find(|c| c.name == "topics").expect("topics");
    let rows = pixels(&chart.png);
    // Per pixel row, how many pixels have the bar colour: one band per bar, top to bottom.
    let widths = bands(&rows.iter().map(|r| r.iter().filter(|p| is(TOPIC_BAR)(p)).count()).collect::<Vec<_>>());
    assert_eq!(widths.len(), 4, "{widths:?}");
    // (no topic) 4, housing 2, finance 1, technology 1.
    let unit = widths[2] as f64;
    for (w, n) in widths.iter().zip([4.0, 2.0, 1.0, 1.0]) {
        assert!((*w as f64 / unit - n).abs() < 0.1, "bar widths {widths:?} are not 4:2:1:1");
    }
    assert!(chart.alt.contains("housing: 2"), "{}", chart.alt);
}

#[test]
fn the_histogram_bars_are_as_tall_as_their_counts() {
    let f = Figures::compute(&november(), nov(), TZ, &cal());
    let chart = charts::draw_all(&f).expect("charts").into_iter().find(|c| c.name == "days").expect("days");
    let rows = pixels(&chart.png);
    // Per pixel column, how many pixels have the bar colour: one band per bar, left to right.
    let heights: Vec<usize> =
        (0..WIDTH as usize).map(|x| rows.iter().filter(|r| is(DAYS_BAR)(&r[x])).count()).collect();
    let bars = bands(&heights);
    // 3 days: 2 requests; 9 days: 1; 12 days: 1.
    assert_eq!(bars.len(), 3, "{bars:?}");
    let unit = bars[1] as f64;
    assert!((bars[0] as f64 / unit - 2.0).abs() < 0.1 && bars[1] == bars[2], "{bars:?}");
    // The 3-day bar stands left of the 9-day one, which is left of the 12-day one, spaced as
    // the days are.
    let starts: Vec<usize> = (1..heights.len()).filter(|&x| heights[x] > 0 && heights[x - 1] == 0).collect();
    let (a, b, c) = (starts[0] as f64, starts[1] as f64, starts[2] as f64);
    assert!(((b - a) / (c - b) - 2.0).abs() < 0.1, "bars start at {starts:?}");
}

#[test]
fn the_trend_line_rises_to_the_busiest_month() {
    let mut rows = november();
    rows.received_in_window.extend(std::iter::repeat_n("2026-11-10".to_string(), 9));
    let f = Figures::compute(&rows, nov(), TZ, &cal());
    assert_eq!(f.trend.last().map(|t| t.received), Some(12));
    let chart = charts::draw_all(&f).expect("charts").into_iter().find(|c| c.name == "trend").expect("trend");
    if let Ok(dir) = std::env::var("INTAKE311_CHART_DIR") {
        for c in charts::draw_all(&f).expect("charts") {
            std::fs::write(format!("{dir}/{}.png", c.name), &c.png).expect("write");
        }
    }
    let px = pixels(&chart.png);
    let received: Vec<(usize, usize)> = px
        .iter()
        .enumerate()
        .flat_map(|(y, r)| r.iter().enumerate().filter(|(_, p)| is(RECEIVED_LINE)(p)).map(move |(x, _)| (x, y)))
        .collect();
    assert!(px.iter().flatten().any(is(ANSWERED_LINE)), "the responses line is drawn");
    // The right half (the legend is in the upper left): the last month (12 questions) is far
    // above the months with none (June to September).
    let top = |from: usize, to: usize| received.iter().filter(|(x, _)| (from..to).contains(x)).map(|(_, y)| *y).min();
    let right = received.iter().map(|(x, _)| *x).max().expect("received line pixels");
    let (last, quiet) =
        (top(right - 6, right + 1).expect("last"), top(WIDTH as usize / 2, WIDTH as usize * 3 / 5).expect("quiet"));
    assert!(last + 150 < quiet, "the last month's point (y {last}) is not far above the quiet months (y {quiet})");
}

#[test]
fn empty_months_still_draw_real_images() {
    let f = Figures::compute(&ReportRows::default(), nov(), TZ, &cal());
    for chart in charts::draw_all(&f).expect("charts") {
        let px = pixels(&chart.png);
        let inked = px.iter().flatten().filter(|p| **p != [255, 255, 255]).count();
        assert!(inked > 200, "{}: the chart says something ({inked} inked pixels)", chart.name);
    }
}

#[test]
fn the_report_mail_shows_every_figure_and_its_charts() {
    let report = Report::of(&november(), nov(), TZ, &cal()).expect("report");
    let ctx = render::context(&report.figures, &report.charts, "311 for Cities", "intake@311.test", |c| {
        render::data_uri(&c.png)
    })
    .expect("context");
    let t = crate::outbound::Templates::load(None).expect("templates");
    let mail = t.render("monthly_report", &ctx).expect("renders");
    if let Ok(dir) = std::env::var("INTAKE311_CHART_DIR") {
        std::fs::write(format!("{dir}/report.html"), &mail.html).expect("write");
    }
    assert_eq!(
        mail.subject,
        "311 for Cities monthly report, November 2026: 7 questions, 2 responses, 1 referral, 2 overdue at month end"
    );
    for html_or_text in [&mail.html, &mail.text] {
        for seen in
            ["Dayton, OH", "Lincoln, WI", "Gary, IN", "(no topic)", "311-2026-0009", "2026-11-20", "75% (3 of 4)"]
        {
            assert!(html_or_text.contains(seen), "{seen} missing from\n{html_or_text}");
        }
    }
    // The three charts, each a PNG inside the page.
    assert_eq!(mail.html.matches("src=\"data:image/png;base64,").count(), 3, "{}", mail.html);
    let first = mail.html.split("src=\"data:image/png;base64,").nth(1).and_then(|s| s.split('"').next()).expect("uri");
    // Handlebars escapes `=` in attribute values; a browser reads `&#x3D;` as `=`.
    let b64 = first.replace("&#x3D;", "=");
    let png = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64).expect("base64");
    assert_eq!(pixels(&png).len(), HEIGHT as usize);
    assert!(!mail.text.contains("data:image"), "the text part has no images");
}
