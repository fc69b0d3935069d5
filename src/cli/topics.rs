//! `intake311 topics`: the topics list in use (names staff type, labels, keywords).

use std::process::ExitCode;

use intake311::config::Config;
use intake311::topics::Topics;

pub fn run(path: Option<&std::path::Path>, json: bool) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(path)?;
    let topics = Topics::of(&cfg)?;
    if json {
        let list: Vec<serde_json::Value> = topics
            .all()
            .iter()
            .map(|t| serde_json::json!({"name": t.name, "label": t.label(), "keywords": t.keywords}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("topics from {}", topics.origin);
    for t in topics.all() {
        println!("{:<22} {}", t.name, t.label());
        println!("{:<22} keywords: {}", "", t.keywords.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
