//! `intake311 templates`: the built-in mail templates, written out to start overrides from.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum TemplatesCmd {
    /// Write the built-in templates to DIR, to start a folder of overrides (intake.templates_dir)
    /// from. Keep only the files you change.
    Export {
        /// The folder to write to (created when missing).
        dir: PathBuf,
        /// Overwrite files that already exist there.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(cmd: TemplatesCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        TemplatesCmd::Export { dir, force } => {
            let written = intake311::outbound::export_builtin(&dir, force)?;
            for path in &written {
                println!("{}", path.display());
            }
            println!("{} file(s) written to {}", written.len(), dir.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
