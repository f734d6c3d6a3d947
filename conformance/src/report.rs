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
            writeln!(f, "  {section:<14} {passed}/{total}")?;
        }
        for c in self.failures() {
            writeln!(
                f,
                "  FAILED {}::{}: {}",
                c.section,
                c.name,
                c.failure.as_deref().unwrap_or_default()
            )?;
        }
        Ok(())
    }
}
