//! The binary's [`Reporter`]: an indicatif progress bar on stderr (hidden when stderr is not a
//! terminal) and warnings printed as `warning: …`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use memscan_io::Reporter;
use std::io::IsTerminal;
use std::sync::Mutex;

pub struct BarReporter {
    bar: Mutex<Option<ProgressBar>>,
    quiet: bool,
}

impl BarReporter {
    pub fn new(quiet: bool) -> Self {
        BarReporter {
            bar: Mutex::new(None),
            quiet,
        }
    }
}

impl Reporter for BarReporter {
    fn start(&self, stage: &str, total: u64) {
        if self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{msg:>22} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(stage.to_string());
        *self.bar.lock().expect("progress lock") = Some(bar);
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            bar.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }

    fn warn(&self, message: &str) {
        let guard = self.bar.lock().expect("progress lock");
        match guard.as_ref() {
            Some(bar) => bar.suspend(|| eprintln!("warning: {message}")),
            None => eprintln!("warning: {message}"),
        }
    }
}
