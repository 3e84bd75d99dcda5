//! Findings: what a check reports about a file, one problem each, with a
//! severity, a stable code and a location.
//!
//! Parsers return errors; validators walk on and collect findings, so one bad
//! page does not hide the other problems.

use std::fmt;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; not a problem (e.g. "no sha256 trailer: a raw db copy").
    Info,
    /// Something is off but the data is usable as it is (e.g. a torn meta page
    /// bbolt falls back from).
    Warning,
    /// Damage or an inconsistency: data is lost, unreadable or wrong.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem found in a file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// Stable kebab-case identifier of the kind of problem.
    pub code: &'static str,
    /// The file it is in, when a check covers several files (a data dir).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Page id, where the problem is on a page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    /// Byte offset in the file, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// What is wrong, in words.
    pub message: String,
}

impl Finding {
    /// A finding with no location.
    pub fn new(severity: Severity, code: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            severity,
            code,
            file: None,
            page: None,
            offset: None,
            message: message.into(),
        }
    }

    /// Sets the file.
    pub fn in_file(mut self, file: impl Into<String>) -> Finding {
        self.file = Some(file.into());
        self
    }

    /// Sets the page.
    pub fn at_page(mut self, page: u64) -> Finding {
        self.page = Some(page);
        self
    }

    /// Sets the byte offset.
    pub fn at_offset(mut self, offset: u64) -> Finding {
        self.offset = Some(offset);
        self
    }

    /// Whether this finding makes a check fail (warnings and errors do).
    pub fn counts(&self) -> bool {
        self.severity >= Severity::Warning
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]", self.severity, self.code)?;
        if let Some(file) = &self.file {
            write!(f, " {file}")?;
        }
        if let Some(p) = self.page {
            write!(f, " page {p}")?;
        }
        if let Some(o) = self.offset {
            write!(f, " offset {o}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A capped list of findings: past the cap, findings are counted, not kept, so
/// a file with millions of broken elements cannot exhaust memory.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Findings {
    items: Vec<Finding>,
    /// Findings not kept because of the cap.
    pub suppressed: u64,
    /// Suppressed findings that were errors or warnings.
    #[serde(skip)]
    suppressed_counting: u64,
}

/// How many findings a report keeps.
pub const MAX_FINDINGS: usize = 10_000;

impl Findings {
    /// Adds a finding (or counts it past the cap).
    pub fn push(&mut self, f: Finding) {
        if self.items.len() < MAX_FINDINGS {
            self.items.push(f);
        } else {
            self.suppressed += 1;
            if f.counts() {
                self.suppressed_counting += 1;
            }
        }
    }

    /// The kept findings.
    pub fn items(&self) -> &[Finding] {
        &self.items
    }

    /// Whether any finding (kept or suppressed) is a warning or error.
    pub fn has_problems(&self) -> bool {
        self.suppressed_counting > 0 || self.items.iter().any(Finding::counts)
    }

    /// Number of kept findings at `s`.
    pub fn count(&self, s: Severity) -> usize {
        self.items.iter().filter(|f| f.severity == s).count()
    }

    /// Appends all of `other`.
    pub fn extend(&mut self, other: Findings) {
        self.suppressed += other.suppressed;
        self.suppressed_counting += other.suppressed_counting;
        for f in other.items {
            self.push(f);
        }
    }

    /// Adds the suppressed counts of `other` (whose kept findings were
    /// taken one by one).
    pub fn extend_suppressed(&mut self, other: &Findings) {
        self.suppressed += other.suppressed;
        self.suppressed_counting += other.suppressed_counting;
    }

    /// Sets the file of every kept finding that has none.
    pub fn set_file(&mut self, file: &str) {
        for f in &mut self.items {
            if f.file.is_none() {
                f.file = Some(file.to_string());
            }
        }
    }

    /// Rewrites the file of every kept finding (given its current one).
    pub fn map_files(&mut self, f: impl Fn(Option<&str>) -> String) {
        for x in &mut self.items {
            x.file = Some(f(x.file.as_deref()));
        }
    }

    /// Makes errors of the kept findings with these (code, file) pairs.
    pub fn raise(&mut self, which: &[(&'static str, String)]) {
        for f in &mut self.items {
            if which
                .iter()
                .any(|(c, file)| *c == f.code && f.file.as_deref() == Some(file.as_str()))
            {
                f.severity = Severity::Error;
            }
        }
    }

    /// Sorts by severity (errors first), keeping the original order otherwise.
    pub fn sort(&mut self) {
        self.items.sort_by_key(|f| std::cmp::Reverse(f.severity));
    }
}

/// The verdict on one file or data dir.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// No warnings or errors.
    Ok,
    /// Warnings only: usable, but look at them.
    Warnings,
    /// Errors: damaged or inconsistent.
    Damaged,
    /// Could not be read at all (missing, permission denied, bad archive).
    Unreadable,
    /// Not etcd data (batch verification lists such files and goes on).
    Skipped,
}

impl Verdict {
    /// The verdict a set of findings earns.
    pub fn of(f: &Findings) -> Verdict {
        let (errors, warnings) = (f.count(Severity::Error), f.count(Severity::Warning));
        if errors > 0 || (f.has_problems() && warnings == 0) {
            Verdict::Damaged
        } else if warnings > 0 {
            Verdict::Warnings
        } else {
            Verdict::Ok
        }
    }

    /// Lowercase word.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warnings => "warnings",
            Verdict::Damaged => "damaged",
            Verdict::Unreadable => "unreadable",
            Verdict::Skipped => "skipped",
        }
    }

    /// Whether a backup with this verdict can be relied on (ok or warnings).
    pub fn passes(self) -> bool {
        matches!(self, Verdict::Ok | Verdict::Warnings)
    }
}
