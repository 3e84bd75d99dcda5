//! The progress bar of long commands: drawn on stderr from the library's
//! counters ([`crate::progress`]) once a command has run for a second, only
//! when stderr is a terminal, never on stdout. `ETCD_RESCUE_PROGRESS=never`
//! turns it off; `always` draws it at once on any stderr (for tests).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// Draws the bar while it lives.
pub struct Ticker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Starts watching the counters (a thread that sleeps until the
    /// command has run for a second).
    pub fn start() -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let mode = std::env::var("ETCD_RESCUE_PROGRESS").unwrap_or_default();
        let forced = mode == "always";
        if mode == "never" || !forced && !std::io::stderr().is_terminal() {
            return Ticker { stop, handle: None };
        }
        let delay = if forced {
            Duration::ZERO
        } else {
            Duration::from_secs(1)
        };
        let flag = stop.clone();
        // The counters are the process's: this command's work is what
        // they gain from now on.
        let (_, done0, total0) = crate::progress::now();
        let handle = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || draw(&flag, delay, forced, (done0, total0)))
            .ok();
        Ticker { stop, handle }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn draw(stop: &AtomicBool, delay: Duration, forced: bool, (done0, total0): (u64, u64)) {
    let start = Instant::now();
    while start.elapsed() < delay {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let target = if forced {
        ProgressDrawTarget::term_like(Box::new(Stderr))
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(Some(0), target);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:20} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    loop {
        let (step, done, total) = crate::progress::now();
        let total = total.saturating_sub(total0);
        bar.set_length(total);
        bar.set_position(done.saturating_sub(done0).min(total));
        bar.set_message(step);
        if stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if forced {
        bar.finish();
    } else {
        bar.finish_and_clear();
    }
}

/// Stderr as a terminal of 80 columns, for the forced bar.
#[derive(Debug)]
struct Stderr;

impl Stderr {
    fn put(&self, s: &str) -> std::io::Result<()> {
        std::io::stderr().write_all(s.as_bytes())
    }
}

impl TermLike for Stderr {
    fn width(&self) -> u16 {
        80
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        self.put(&format!("\x1b[{n}A"))
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        self.put(&format!("\x1b[{n}B"))
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        self.put(&format!("\x1b[{n}C"))
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        self.put(&format!("\x1b[{n}D"))
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.put(&format!("{s}\n"))
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.put(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        self.put("\r\x1b[2K")
    }

    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
