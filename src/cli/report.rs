//! `intake311 report`: the monthly report, as text, HTML, CSV or JSON, to the terminal or a file.
//!
//! Owns: the arguments and where the output goes. The figures and charts are
//! [`intake311::report::Report::gather`]'s, the text and HTML the `monthly_report` template's
//! (the same mail the daemon sends the admin staff, with the charts as `data:` URIs instead of
//! inline parts). Talks to: the report module, the templates and the file system.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, ValueEnum};

use intake311::deadlines::Calendar;
use intake311::outbound::Templates;
use intake311::report::{Month, Report, render};

use super::context::Context;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The month (YYYY-MM; default: the last month, in intake.timezone).
    #[arg(long, value_name = "YYYY-MM", value_parser = month_arg)]
    month: Option<Month>,
    /// What to write: text (as the mail's text part), html (a standalone page with the charts
    /// inside), csv (one small table per figure, for a spreadsheet) or json.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Html,
    Csv,
    Json,
}

fn month_arg(s: &str) -> Result<Month, String> {
    s.parse().map_err(|e: intake311::report::BadMonth| e.to_string())
}

pub async fn run(ctx: Context, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let tz = ctx.cfg.intake.timezone;
    let month = args.month.unwrap_or_else(|| Month::of(chrono::Utc::now().with_timezone(&tz).date_naive()).prev());
    let cal = Calendar::of(&ctx.cfg)?;
    let report = Report::gather(&ctx.store, month, tz, &cal).await?;
    let text = match args.format {
        Format::Json => render::json(&report.figures)?,
        Format::Csv => render::csv(&report.figures)?,
        Format::Text | Format::Html => {
            let templates = Templates::load(&ctx.cfg.intake.templates_dir)?;
            let context = render::context(
                &report.figures,
                &report.charts,
                &ctx.cfg.intake.service_name,
                &ctx.cfg.intake.address,
                |c| render::data_uri(&c.png),
            )?;
            let rendered = templates.render("monthly_report", &context)?;
            if args.format == Format::Html { rendered.html } else { rendered.text }
        }
    };
    match &args.output {
        Some(path) => {
            std::fs::write(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("{}: the report for {} ({})", path.display(), month.label(), report.figures.summary());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
