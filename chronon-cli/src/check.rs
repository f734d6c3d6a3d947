//! `chronon check URL`: the conformance suite against any store, in scratch datasets.
//!
//! Exit status: 0 when every case passed; 1 when a case broke the contract (a wrong answer, a
//! lost acknowledged write, a non-retryable error); 2 when the only failures are cases that kept
//! timing out after 300 s of retries ("too slow": raise the store's per-call timeout with
//! `?timeout_ms=` and rerun). Slow calls that succeed on retry are counted, not failed.

use anyhow::{bail, Result};
use clap::Args;

use chronon_serving::store_url::open_store;

/// `chronon check …`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Store URL (see `chronon --help`); omit it with `--launch`.
    #[arg(required_unless_present = "launch")]
    pub url: Option<String>,
    /// Start a local server with the conformance launchers instead of a URL: `redis`,
    /// `dynamodb` or `mongodb` (whatever `CHRONON_*` variables, Docker or a child process give),
    /// and check it with the adapter's default settings.
    #[arg(long, conflicts_with = "url")]
    pub launch: Option<String>,
    /// Only cases whose name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub cases: Vec<String>,
    /// Write the report as JSON to this file too.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// Runs the suite; `Ok(false)` when a case broke the contract. Exits with status 2 when the only
/// failures are "too slow" (see the module docs).
pub async fn run(args: CheckArgs) -> Result<bool> {
    let report = {
        // A launched server lives until the suite is done.
        let (url, _server) = match (args.url, &args.launch) {
            (Some(url), None) => (url, None),
            (None, Some(backend)) => {
                let (url, guard) = crate::launch::launch(backend, "check_").await?;
                eprintln!("check: launched {backend} at {url}");
                (url, Some(guard))
            }
            _ => bail!(
                "give either a store URL or --launch {}",
                crate::launch::LAUNCHABLE
            ),
        };
        run_suite(&url, args.cases).await?
    };
    print_table(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    if report.contract_failures().is_empty() && !report.too_slow().is_empty() {
        println!(
            "verdict: no contract failure, but {} case(s) too slow for the store's per-call \
             timeout (exit 2)",
            report.too_slow().len()
        );
        std::process::exit(2);
    }
    Ok(report.passed())
}

/// The suite on `url`, each case in fresh datasets that it drops afterwards.
pub async fn run_suite(url: &str, filter: Vec<String>) -> Result<conformance::Report> {
    run_cases(url, conformance::all_cases(), filter).await
}

/// Runs `cases` (a subset of the suite) against the store at `url`.
pub async fn run_cases(
    url: &str,
    cases: Vec<conformance::Case>,
    filter: Vec<String>,
) -> Result<conformance::Report> {
    // Fail early, with the store's own error, if it cannot be opened at all.
    let backend = open_store(url).await?.backend().to_string();
    let owned = url.to_string();
    let factory = conformance::FnFactory::new(backend, move || {
        let url = owned.clone();
        async move { open_store(&url).await }
    });
    let mut options = conformance::RunOptions::default();
    if !filter.is_empty() {
        options.filter = filter;
    }
    Ok(conformance::run_with(std::sync::Arc::new(factory), cases, options).await)
}

/// Prints one line per case and a per-section summary.
pub fn print_table(report: &conformance::Report) {
    for c in &report.cases {
        let status = match (&c.failure, c.too_slow) {
            (None, _) => "pass",
            (Some(_), true) => "SLOW",
            (Some(_), false) => "FAIL",
        };
        let retries = if c.retries > 0 {
            format!("  ({} retried)", c.retries)
        } else {
            String::new()
        };
        println!(
            "{status}  {:<15} {:<48} {:>6} ms{retries}",
            c.section, c.name, c.millis
        );
        if let Some(f) = &c.failure {
            println!("      {f}");
        }
    }
    println!();
    print!("{report}");
}
