//! How far long work has come, for the bar the command line draws: the
//! library counts bytes (pages walked, bytes hashed, records read) against
//! the bytes it has said it will cover. Nothing is printed here; the
//! counters are process-wide and cost one relaxed atomic add per step.
//!
//! Several steps may run at once (a restore judges its source while it
//! writes): each [`begin`] adds its bytes to the total, so the fraction is
//! of all the work begun so far.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

static DONE: AtomicU64 = AtomicU64::new(0);
static TOTAL: AtomicU64 = AtomicU64::new(0);
static STEP: Mutex<&'static str> = Mutex::new("");

/// Starts a step covering `bytes`, named for the bar ("walking pages").
pub fn begin(step: &'static str, bytes: u64) {
    TOTAL.fetch_add(bytes, Ordering::Relaxed);
    if let Ok(mut s) = STEP.lock() {
        *s = step;
    }
}

/// Counts `bytes` of the current work as done.
pub fn advance(bytes: u64) {
    DONE.fetch_add(bytes, Ordering::Relaxed);
}

/// Where the work stands: (step, bytes done, bytes begun), counted since
/// the process started (subtract an earlier reading for one command's).
pub fn now() -> (&'static str, u64, u64) {
    let step = STEP.lock().map(|s| *s).unwrap_or("");
    (step, DONE.load(Ordering::Relaxed), TOTAL.load(Ordering::Relaxed))
}
