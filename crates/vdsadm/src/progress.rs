//! The progress bar of long operations (refresh and reenumerate of many subsystems): an indicatif
//! bar on stderr when stderr is a terminal, and nothing at all when it is piped or redirected, so
//! scripts and logs stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar, or nothing when stderr is not a terminal. Cheap to clone into a callback.
#[derive(Clone)]
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// A bar over `total` subsystems labelled `what` (`refresh`, `reenumerate`).
    pub fn new(total: usize, what: &str) -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(
            Some(total as u64),
            ProgressDrawTarget::stderr_with_hz(10),
        );
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:40}] {pos}/{len} subsystems {elapsed_precise}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_prefix(what.to_string());
        Bar(Some(bar))
    }

    /// `done` of `total` subsystems are finished.
    pub fn set(&self, done: usize, total: usize) {
        if let Some(bar) = &self.0 {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
