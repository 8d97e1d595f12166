//! Progress of long work on stderr: events done, events per second, ETA.
//! Hidden in quiet and JSON modes and when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Clone)]
pub struct Progress(ProgressBar);

impl Progress {
    pub fn new(label: &str, total: u64, visible: bool) -> Progress {
        if !visible {
            return Progress(ProgressBar::hidden());
        }
        let bar = ProgressBar::new(total);
        let template = "{prefix:>10} [{bar:30}] {human_pos}/{human_len} events, \
                        {per_sec}, ETA {eta}";
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(label.to_owned());
        Progress(bar)
    }

    pub fn hidden() -> Progress {
        Progress(ProgressBar::hidden())
    }

    pub fn inc(&self, events: usize) {
        self.0.inc(events as u64);
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}
