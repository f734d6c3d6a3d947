//! `chronon check URL`: the conformance suite against any store, in scratch datasets.

use anyhow::Result;
use clap::Args;

use chronon_serving::store_url::open_store;

/// `chronon check …`
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Store URL (see `chronon --help`).
    pub url: String,
    /// Only cases whose name contains one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub cases: Vec<String>,
    /// Write the report as JSON to this file too.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// Runs the suite; `Ok(false)` when any case failed.
pub async fn run(args: CheckArgs) -> Result<bool> {
    let report = run_suite(&args.url, args.cases).await?;
    print_table(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
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
        let status = if c.failure.is_none() { "pass" } else { "FAIL" };
        println!(
            "{status}  {:<12} {:<48} {:>6} ms",
            c.section, c.name, c.millis
        );
        if let Some(f) = &c.failure {
            println!("      {f}");
        }
    }
    println!();
    print!("{report}");
}
