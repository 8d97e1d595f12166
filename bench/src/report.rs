//! The comparisons: each system figure beside its baseline, the ratio and
//! the target; written as JSON (`<out_dir>/<date>-<mode>.json`) and markdown.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::baselines::Baselines;
use crate::config::{Mode, RunArgs};
use crate::stats::Measured;
use crate::system::{Outcome, System};

mod figures;
mod machine;
mod tables;

pub use figures::{Figure, KAFKA_RECORDS_PER_COMMAND};
pub use machine::Machine;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub mode: String,
    pub invocation: String,
    pub machine: Machine,
    pub figures: Vec<Figure>,
    pub baselines: Baselines,
    pub system: System,
}

impl Results {
    pub fn new(
        args: &RunArgs,
        started_at: DateTime<Utc>,
        baselines: Baselines,
        system: System,
    ) -> Results {
        Results {
            started_at,
            finished_at: Utc::now(),
            mode: match args.mode {
                Mode::Quick => "quick",
                Mode::Full => "full",
            }
            .to_owned(),
            invocation: args.invocation.clone(),
            machine: Machine::read(),
            figures: figures::compare(&baselines, &system),
            baselines,
            system,
        }
    }

    fn stem(&self) -> String {
        format!(
            "{}-{}",
            self.started_at.format("%Y-%m-%dT%H%M%SZ"),
            self.mode
        )
    }
}

/// Writes `<stem>.json` and `<stem>.md` into the output directory.
pub fn write(args: &RunArgs, results: &Results) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out_dir)?;
    let json = args.out_dir.join(format!("{}.json", results.stem()));
    std::fs::write(&json, serde_json::to_string_pretty(results)?)?;
    let md = args.out_dir.join(format!("{}.md", results.stem()));
    std::fs::write(&md, markdown(results))?;
    eprintln!("bench: wrote {} and {}", json.display(), md.display());
    Ok(())
}

/// The report: figures against baselines, the baselines, every phase, memory.
pub fn markdown(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Run of {} ({} mode)\n",
        r.started_at.format("%Y-%m-%d %H:%M UTC"),
        r.mode
    );
    let _ = writeln!(out, "Command: `{}`\n", r.invocation);
    let _ = writeln!(out, "Machine: {}\n", r.machine.describe());
    out.push_str(&tables::figures(&r.figures));
    out.push_str(&tables::baselines(&r.baselines));
    out.push_str(&tables::phases(&r.system));
    out.push_str(&tables::hops(&r.system));
    out.push_str(&tables::memory(&r.system));
    out.push_str(&tables::not_available(&r.system));
    out
}

/// `1234567.8` as `1,234,568`.
pub fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.abs());
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if x < 0.0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

fn measured(outcome: &Outcome) -> Option<&Measured> {
    outcome.measured()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1234567.8), "1,234,568");
        assert_eq!(thousands(-1000.0), "-1,000");
    }
}
