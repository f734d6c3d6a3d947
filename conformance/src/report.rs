//! What a suite run returns: one [`CaseResult`] per case, gathered in a [`Report`] that prints
//! as a per-section summary with every failure listed.

use serde::Serialize;

/// How one case went.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The contract section (`chronon-core/CONTRACT.md`) the case checks.
    pub section: &'static str,
    /// Case name.
    pub name: &'static str,
    /// `None` if it passed, else what went wrong.
    pub failure: Option<String>,
    /// The failure is only slowness: calls kept failing with `Timeout`/`Unavailable` after
    /// retries for the whole retry budget, and nothing wrong was seen. The fix is a longer
    /// per-call timeout (`?timeout_ms=...` in the store URL) or a faster database, not the
    /// adapter's logic.
    pub too_slow: bool,
    /// Calls the case repeated after a retryable error (`Timeout`, `Unavailable`).
    pub retries: u64,
    /// Why the case checked nothing, or what it could not check, on this backend.
    pub note: Option<String>,
    /// Wall time of the case.
    pub millis: u128,
}

/// The outcome of a suite run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The factory's name.
    pub backend: String,
    /// One entry per case run, in registry order.
    pub cases: Vec<CaseResult>,
}

impl Report {
    /// The cases that failed.
    pub fn failures(&self) -> Vec<&CaseResult> {
        self.cases.iter().filter(|c| c.failure.is_some()).collect()
    }

    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// The failed cases that broke a clause of the contract (wrong answer, lost write,
    /// non-retryable error), as opposed to [`too_slow`](Report::too_slow) ones.
    pub fn contract_failures(&self) -> Vec<&CaseResult> {
        self.cases
            .iter()
            .filter(|c| c.failure.is_some() && !c.too_slow)
            .collect()
    }

    /// The failed cases that only ran out of retries on `Timeout`/`Unavailable`.
    pub fn too_slow(&self) -> Vec<&CaseResult> {
        self.cases
            .iter()
            .filter(|c| c.failure.is_some() && c.too_slow)
            .collect()
    }

    /// Calls repeated after a retryable error, over all cases.
    pub fn retries(&self) -> u64 {
        self.cases.iter().map(|c| c.retries).sum()
    }

    /// `(section, passed, total)` per contract section, in first-seen order.
    pub fn sections(&self) -> Vec<(&'static str, usize, usize)> {
        let mut out: Vec<(&'static str, usize, usize)> = Vec::new();
        for c in &self.cases {
            let i = match out.iter().position(|(s, _, _)| *s == c.section) {
                Some(i) => i,
                None => {
                    out.push((c.section, 0, 0));
                    out.len() - 1
                }
            };
            out[i].2 += 1;
            if c.failure.is_none() {
                out[i].1 += 1;
            }
        }
        out
    }

    /// Panics with every failure listed, for use in `#[tokio::test]`s.
    #[track_caller]
    pub fn assert_passed(&self) {
        if !self.passed() {
            panic!("{self}");
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let failed = self.failures().len();
        writeln!(
            f,
            "conformance on {}: {} passed, {} failed",
            self.backend,
            self.cases.len() - failed,
            failed
        )?;
        for (section, passed, total) in self.sections() {
            writeln!(f, "  {section:<16} {passed}/{total}")?;
        }
        let retries = self.retries();
        if retries > 0 {
            let by_case: Vec<String> = self
                .cases
                .iter()
                .filter(|c| c.retries > 0)
                .map(|c| format!("{} {}", c.name, c.retries))
                .collect();
            writeln!(
                f,
                "  retried {retries} calls after Timeout/Unavailable (slow, not wrong): {}",
                by_case.join(", ")
            )?;
        }
        for c in self.cases.iter().filter(|c| c.failure.is_none()) {
            if let Some(note) = &c.note {
                writeln!(f, "  note {}::{}: {note}", c.section, c.name)?;
            }
        }
        for c in self.contract_failures() {
            writeln!(
                f,
                "  FAILED {}::{}: {}",
                c.section,
                c.name,
                c.failure.as_deref().unwrap_or_default()
            )?;
        }
        for c in self.too_slow() {
            writeln!(
                f,
                "  TOO SLOW {}::{}: {} (not a contract failure: raise the store's per-call \
                 timeout, for example ?timeout_ms=60000 in its URL, and rerun)",
                c.section,
                c.name,
                c.failure.as_deref().unwrap_or_default()
            )?;
        }
        Ok(())
    }
}
