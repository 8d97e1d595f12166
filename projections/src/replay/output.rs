//! Output for people (tables, sentences) or scripts (one JSON object per
//! line). Reports go to stdout; progress and errors to stderr.

use std::io::Write;

use serde_json::Value;

use super::cli::Format;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub format: Format,
    pub quiet: bool,
}

impl Output {
    /// Whether progress bars may be drawn.
    pub fn progress(&self) -> bool {
        !self.quiet && self.format == Format::Table
    }

    /// A final report: `text` for people, `json` for scripts, nothing when quiet.
    pub fn report(&self, text: &str, json: &Value) {
        if self.quiet {
            return;
        }
        self.line(text, json);
    }

    /// A table header, for people only.
    pub fn header(&self, text: &str) {
        if self.format == Format::Table {
            self.line(text, &Value::Null);
        }
    }

    /// One line of data (a record, a row), printed even when quiet.
    pub fn line(&self, text: &str, json: &Value) {
        let mut out = std::io::stdout().lock();
        let written = match self.format {
            Format::Table => writeln!(out, "{text}"),
            Format::Json => writeln!(out, "{json}"),
        };
        // A closed pipe (`| head`) is the reader's choice, not an error.
        drop(written);
    }
}
