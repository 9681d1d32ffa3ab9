//! Progress of long commands (`notify run`, `import customers`, large declares, `demo`), one
//! way for all of them: an indicatif bar on a terminal; otherwise (a log file, journald, CI) a
//! plain line at most every 10 s, never an ANSI escape and never "inf". The caller prints the
//! final summary.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often a non-terminal gets a line: a log file must not fill with progress.
const PLAIN_EVERY: Duration = Duration::from_secs(10);
/// How often the bar is redrawn on a terminal.
const BAR_EVERY: Duration = Duration::from_millis(200);

/// What one tick reports: the position on the bar and the message beside it.
pub struct Tick {
    pub done: u64,
    pub message: String,
}

/// Whether progress may draw a bar: stderr is a terminal, `NO_COLOR` is not set and the
/// terminal is not `dumb` (the bar moves the cursor with ANSI escapes).
pub fn draws_bar() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// A running progress report; it stops (and the bar is cleared) when dropped or finished.
pub struct Progress {
    task: tokio::task::JoinHandle<()>,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    /// Reports `tick()` under `label` until finished. `total` is the bar's length when known
    /// (a spinner otherwise).
    pub fn start(
        label: &'static str,
        total: Option<u64>,
        tick: impl Fn() -> Tick + Send + 'static,
    ) -> Self {
        if draws_bar() {
            let bar = match total {
                Some(n) => indicatif::ProgressBar::new(n),
                None => indicatif::ProgressBar::new_spinner(),
            };
            // The counts and the rate are in the message; the default style shows only the
            // bar and pos/len.
            let template = match total {
                Some(_) => "{prefix}: {bar:30} {pos}/{len} {msg}",
                None => "{prefix}: {spinner} {msg}",
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label);
            let drawn = bar.clone();
            let task = tokio::spawn(async move {
                loop {
                    let t = tick();
                    drawn.set_position(t.done);
                    drawn.set_message(t.message);
                    if total.is_none() {
                        drawn.tick();
                    }
                    tokio::time::sleep(BAR_EVERY).await;
                }
            });
            Progress {
                task,
                bar: Some(bar),
            }
        } else {
            let task = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(PLAIN_EVERY).await;
                    eprintln!("{label}: {}", tick().message);
                }
            });
            Progress { task, bar: None }
        }
    }

    /// A report of a step with no count to show (one store transaction, say): the time it
    /// has taken so far.
    pub fn step(label: &'static str, what: impl Into<String>) -> Self {
        let what = what.into();
        let started = Instant::now();
        Self::start(label, None, move || Tick {
            done: 0,
            message: format!("{what}, {:.0} s", started.elapsed().as_secs_f64()),
        })
    }

    /// Stops the report and clears the bar, before the caller prints its summary.
    pub fn finish(self) {
        drop(self);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A reader that counts the bytes read through it, for a bar over a file's length.
pub struct Counted<R> {
    inner: R,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R> Counted<R> {
    pub fn new(inner: R) -> (Self, std::sync::Arc<std::sync::atomic::AtomicU64>) {
        let read = std::sync::Arc::default();
        (
            Counted {
                inner,
                read: std::sync::Arc::clone(&read),
            },
            read,
        )
    }
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// "ETA 12 s", "done", or "ETA unknown" while there is no rate yet: never "inf".
pub fn eta(remaining: u64, rate_per_s: f64) -> String {
    if remaining == 0 {
        "done".to_string()
    } else if rate_per_s > 0.0 && rate_per_s.is_finite() {
        format!("ETA {:.0} s", remaining as f64 / rate_per_s)
    } else {
        "ETA unknown".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::eta;

    #[test]
    fn eta_is_never_infinite() {
        assert_eq!(eta(10, 0.0), "ETA unknown");
        assert_eq!(eta(10, f64::INFINITY), "ETA unknown");
        assert_eq!(eta(0, 0.0), "done");
        assert_eq!(eta(10, 2.0), "ETA 5 s");
    }
}
