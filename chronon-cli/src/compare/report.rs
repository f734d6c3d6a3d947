//! The report: a terminal table, and one self-contained HTML file with SVG charts (no network,
//! no scripts), so it can be mailed around and opened anywhere.

use std::fmt::Write as _;

use super::workload::Op;
use super::{BackendResult, Cell, CompareReport};

/// Appended to a backend's name for its raw-driver series in the charts.
const RAW_SUFFIX: &str = " (raw driver)";

const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Current UTC time as `YYYY-MM-DD HH:MM:SS UTC`, without a date crate.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// A cell's ratio and its spread over the repetitions, `0.93 (0.88-0.97)`; `-` without one.
fn fmt_ratio(c: &Cell) -> String {
    match (c.ratio, c.ratio_min, c.ratio_max) {
        (Some(r), Some(lo), Some(hi)) => format!("{r:.2} ({lo:.2}-{hi:.2})"),
        (Some(r), _, _) => format!("{r:.2}"),
        _ => "-".into(),
    }
}

/// This process's CPU time per key on each side, `0.61/0.45` (adapter/raw): where the ratio
/// is low, a CPU gap of the same size says the adapter's own work is the cause, none says the
/// time went to waiting on the server.
fn fmt_cpu(c: &Cell) -> String {
    let f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"));
    match &c.raw {
        Some(r) => format!("{}/{}", f(c.adapter.cpu_us_per_key), f(r.cpu_us_per_key)),
        None => f(c.adapter.cpu_us_per_key),
    }
}

/// Prints the matrix as a table on stdout.
pub fn print_table(report: &CompareReport) {
    println!(
        "\nchronon compare, {} profile, {} ({}), {} build",
        report.profile.name, report.date, report.machine, report.build
    );
    println!(
        "{} repetitions per cell, each at least {} ms and {} keys (at most {} ms); ratio: median adapter/raw (lowest-highest repetition); cpu: this process's CPU time per key, adapter/raw",
        report.profile.repeats,
        report.profile.cell_time.as_millis(),
        report.profile.min_keys,
        report.profile.cell_max_time.as_millis()
    );
    println!(
        "{:<8} {:<11} {:>5} {:>3} {:>6} {:>10} {:>9} {:>9} {:>9} {:>10} {:>17} {:>13}",
        "backend",
        "op",
        "batch",
        "x",
        "value",
        "keys/s",
        "p50 us",
        "p99 us",
        "p999 us",
        "raw keys/s",
        "ratio",
        "cpu us/key"
    );
    for b in &report.backends {
        if let Some(e) = &b.error {
            println!("{:<8} ERROR: {e}", b.name);
        }
        if !b.suite_left_out.is_empty() {
            println!(
                "{:<8} conformance: {} load cases left out by this profile ({}); `chronon check URL` runs them",
                b.name,
                b.suite_left_out.len(),
                b.suite_left_out.join(", ")
            );
        }
        if b.skipped_cells > 0 {
            println!(
                "{:<8} {} cells skipped: over the profile's time budget of {} s per backend \
                 (the slowest cells come last): {}",
                b.name,
                b.skipped_cells,
                report.profile.backend_budget.as_secs(),
                b.skipped.join(", ")
            );
        }
        for c in &b.cells {
            println!(
                "{:<8} {:<11} {:>5} {:>3} {:>6} {:>10} {:>9} {:>9} {:>9} {:>10} {:>17} {:>13}",
                b.name,
                c.op.name(),
                c.batch,
                c.callers,
                c.value_size,
                fmt_rate(c.adapter.keys_per_sec),
                c.adapter.p50_us,
                c.adapter.p99_us,
                c.adapter.p999_us,
                c.raw
                    .as_ref()
                    .map(|r| fmt_rate(r.keys_per_sec))
                    .unwrap_or_else(|| "-".into()),
                fmt_ratio(c),
                fmt_cpu(c),
            );
        }
        let planned = report.profile.bulk_rows.max(report.profile.keys) as u64;
        for (size, f) in &b.bulk {
            let cut = match f.keys < planned {
                true => format!(
                    " (stopped at a tenth of the budget: {} rows planned; the cells read these)",
                    planned
                ),
                false => String::new(),
            };
            println!(
                "{:<8} bulk_put    {:>5} rows of {size} B: {} rows/s{cut}",
                b.name,
                f.keys,
                fmt_rate(f.keys_per_sec)
            );
        }
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A log-scale line chart: x = batch size, y = keys/s, one line per series.
fn line_chart(title: &str, batches: &[usize], series: &[(String, Vec<Option<f64>>)]) -> String {
    let (w, h, left, right, top, bottom) = (560.0, 300.0, 70.0, 150.0, 30.0, 40.0);
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .filter(|v| *v > 0.0)
        .collect();
    let (lo, hi) = values
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let (lo, hi) = if values.is_empty() {
        (1.0, 10.0)
    } else {
        (
            10f64.powf(lo.log10().floor()),
            10f64.powf(hi.log10().ceil().max(lo.log10().floor() + 1.0)),
        )
    };
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let x = |i: usize| left + plot_w * (i as f64 + 0.5) / batches.len().max(1) as f64;
    let y = |v: f64| top + plot_h * (1.0 - (v.log10() - lo.log10()) / (hi.log10() - lo.log10()));
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{t}">"#,
        t = esc(title)
    );
    let _ = write!(
        s,
        r#"<text x="{left}" y="18" font-size="14" font-weight="bold">{}</text>"#,
        esc(title)
    );
    let mut decade = lo;
    while decade <= hi * 1.0001 {
        let yy = y(decade);
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            left + plot_w,
            left - 6.0,
            yy + 4.0,
            fmt_rate(decade)
        );
        decade *= 10.0;
    }
    for (i, b) in batches.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">{b}</text>"#,
            x(i),
            h - bottom + 16.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">requests per call</text>"#,
        left + plot_w / 2.0,
        h - 6.0
    );
    let _ = write!(
        s,
        r#"<text x="14" y="{:.1}" font-size="11" transform="rotate(-90 14 {:.1})" text-anchor="middle">keys/s (log)</text>"#,
        top + plot_h / 2.0,
        top + plot_h / 2.0
    );
    // One colour per backend; its raw-driver baseline (the series right after it) is drawn
    // dashed in the same colour, so 5 backends and 4 baselines never reuse a colour.
    let mut backends_seen = 0usize;
    for (n, (name, vals)) in series.iter().enumerate() {
        let raw = name.ends_with(RAW_SUFFIX);
        if !raw {
            backends_seen += 1;
        }
        let color = COLORS[backends_seen.saturating_sub(1) % COLORS.len()];
        let dash = if raw {
            r#" stroke-dasharray="6 3""#
        } else {
            ""
        };
        let points: Vec<String> = vals
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.filter(|v| *v > 0.0)
                    .map(|v| format!("{:.1},{:.1}", x(i), y(v)))
            })
            .collect();
        if !points.is_empty() {
            let _ = write!(
                s,
                r#"<polyline class="series" fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
                points.join(" ")
            );
            for p in &points {
                let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(s, r#"<circle cx="{px}" cy="{py}" r="3" fill="{color}"/>"#);
            }
        }
        let ly = top + 14.0 * n as f64 + 6.0;
        let _ = write!(
            s,
            r#"<line x1="{}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="{color}" stroke-width="3"{dash}/><text x="{}" y="{:.1}" font-size="11">{}</text>"#,
            w - right + 6.0,
            ly - 4.0,
            w - right + 20.0,
            ly - 4.0,
            w - right + 24.0,
            ly,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// Grouped bars of p50/p99/p999 latency (log scale) per backend.
fn latency_chart(title: &str, rows: &[(String, [u64; 3])]) -> String {
    let (w, h, left, top, bottom) = (560.0, 300.0, 70.0, 30.0, 40.0);
    let plot_w = w - left - 20.0;
    let plot_h = h - top - bottom;
    let max = rows
        .iter()
        .flat_map(|(_, v)| v.iter())
        .copied()
        .max()
        .unwrap_or(10)
        .max(10) as f64;
    let hi = 10f64.powf(max.log10().ceil());
    let y = |v: f64| top + plot_h * (1.0 - v.max(1.0).log10() / hi.log10());
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{t}">"#,
        t = esc(title)
    );
    let _ = write!(
        s,
        r#"<text x="{left}" y="18" font-size="14" font-weight="bold">{}</text>"#,
        esc(title)
    );
    let mut decade = 1.0;
    while decade <= hi {
        let yy = y(decade);
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{} us</text>"##,
            left + plot_w,
            left - 6.0,
            yy + 4.0,
            fmt_rate(decade)
        );
        decade *= 10.0;
    }
    let group = plot_w / rows.len().max(1) as f64;
    for (g, (name, vals)) in rows.iter().enumerate() {
        let gx = left + group * g as f64;
        for (k, v) in vals.iter().enumerate() {
            let bw = group / 4.0;
            let bx = gx + bw * (k as f64 + 0.5);
            let by = y(*v as f64);
            let _ = write!(
                s,
                r#"<rect class="series" x="{bx:.1}" y="{by:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{} {}: {v} us</title></rect>"#,
                bw * 0.9,
                (top + plot_h - by).max(0.0),
                ["#9ecae1", "#3182bd", "#08519c"][k],
                esc(name),
                ["p50", "p99", "p999"][k]
            );
        }
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"#,
            gx + group / 2.0,
            h - bottom + 16.0,
            esc(name)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="11">bars: p50, p99, p999</text>"#,
        left + 4.0,
        h - 6.0
    );
    s.push_str("</svg>");
    s
}

fn series_for(
    report: &CompareReport,
    op: Op,
    callers: usize,
    value_size: usize,
    raw: bool,
) -> Vec<(String, Vec<Option<f64>>)> {
    let mut out = Vec::new();
    for b in &report.backends {
        let pick = |batch: usize, raw_side: bool| {
            b.cells
                .iter()
                .find(|c| {
                    c.op == op
                        && c.callers == callers
                        && c.value_size == value_size
                        && c.batch == batch
                })
                .and_then(|c| {
                    if raw_side {
                        c.raw.as_ref().map(|r| r.keys_per_sec)
                    } else {
                        Some(c.adapter.keys_per_sec)
                    }
                })
        };
        out.push((
            b.name.clone(),
            report
                .profile
                .batches
                .iter()
                .map(|bt| pick(*bt, false))
                .collect(),
        ));
        if raw && b.cells.iter().any(|c| c.raw.is_some()) {
            out.push((
                format!("{}{RAW_SUFFIX}", b.name),
                report
                    .profile
                    .batches
                    .iter()
                    .map(|bt| pick(*bt, true))
                    .collect(),
            ));
        }
    }
    out
}

fn conformance_table(backends: &[BackendResult]) -> String {
    let mut sections: Vec<&str> = Vec::new();
    for b in backends {
        if let Some(r) = &b.conformance {
            for (s, _, _) in r.sections() {
                if !sections.contains(&s) {
                    sections.push(s);
                }
            }
        }
    }
    let mut s = String::from("<table><tr><th>backend</th>");
    for sec in &sections {
        let _ = write!(s, "<th>{}</th>", esc(sec));
    }
    s.push_str("</tr>");
    for b in backends {
        let _ = write!(s, "<tr><td>{}</td>", esc(&b.name));
        match &b.conformance {
            None => {
                let _ = write!(s, "<td colspan=\"{}\">not run</td>", sections.len().max(1));
            }
            Some(r) => {
                let secs = r.sections();
                for sec in &sections {
                    match secs.iter().find(|(x, _, _)| x == sec) {
                        Some((_, p, t)) => {
                            let class = if p == t { "pass" } else { "fail" };
                            let _ = write!(s, "<td class=\"{class}\">{p}/{t}</td>");
                        }
                        None => s.push_str("<td>-</td>"),
                    }
                }
            }
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    for b in backends {
        if let Some(r) = &b.conformance {
            for f in r.failures() {
                let _ = write!(
                    s,
                    "<p class=\"fail\">{}: {}::{} — {}</p>",
                    esc(&b.name),
                    f.section,
                    f.name,
                    esc(f.failure.as_deref().unwrap_or(""))
                );
            }
        }
        if let Some(e) = &b.error {
            let _ = write!(s, "<p class=\"fail\">{}: {}</p>", esc(&b.name), esc(e));
        }
        if !b.suite_left_out.is_empty() {
            let _ = write!(
                s,
                "<p>{}: {} load cases left out by this profile ({}); <code>chronon check URL</code> runs them</p>",
                esc(&b.name),
                b.suite_left_out.len(),
                esc(&b.suite_left_out.join(", "))
            );
        }
        if b.skipped_cells > 0 {
            let _ = write!(
                s,
                "<p class=\"fail\">{}: {} matrix cells skipped (over the profile's time budget per backend; the slowest cells come last): {}</p>",
                esc(&b.name),
                b.skipped_cells,
                esc(&b.skipped.join(", "))
            );
        }
    }
    s
}

/// The self-contained HTML report.
pub fn html(report: &CompareReport) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>chronon compare</title><style>
body{{font-family:sans-serif;margin:24px;color:#222}} table{{border-collapse:collapse;margin:8px 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}} th{{background:#f3f3f3}}
td.pass{{background:#e6f4ea}} td.fail,p.fail{{background:#fce8e6}} .charts{{display:flex;flex-wrap:wrap;gap:12px}}
</style></head><body><h1>chronon compare</h1>
<p>{} profile · {} build · {} · {} · seed {}</p>
<p>Each cell ran {} times, each repetition at least {} ms and {} keys (at most {} ms); within each, the adapter and the raw driver took turns call by call on the same keys, and each side's keys/s counts only the time its own calls were in flight. adapter/raw is the median of the repetitions' ratios, with the lowest and highest in brackets.</p>
<h2>Conformance (cases passed per section of the contract)</h2>{}"#,
        report.profile.name,
        esc(&report.build),
        esc(&report.date),
        esc(&report.machine),
        report.seed,
        report.profile.repeats,
        report.profile.cell_time.as_millis(),
        report.profile.min_keys,
        report.profile.cell_max_time.as_millis(),
        conformance_table(&report.backends)
    );
    s.push_str("<h2>Throughput by batch size</h2><p>Keys per second through each adapter, and through the raw driver doing the same batched work where the backend has a baseline. Log scale.</p>");
    for &value_size in &report.profile.value_sizes {
        let _ = write!(s, "<h3>{value_size}-byte values</h3><div class=\"charts\">");
        for op in Op::ALL {
            for &callers in &report.profile.callers {
                let title = format!("{}, {callers} caller(s), {value_size} B", op.name());
                s.push_str(&line_chart(
                    &title,
                    &report.profile.batches,
                    &series_for(report, op, callers, value_size, true),
                ));
            }
        }
        s.push_str("</div>");
    }
    s.push_str("<h2>Latency per call</h2><div class=\"charts\">");
    let callers = report.profile.callers.iter().copied().max().unwrap_or(1);
    let value_size = report.profile.value_sizes.first().copied().unwrap_or(100);
    for op in Op::ALL {
        let batch = if report.profile.batches.contains(&100) {
            100
        } else {
            report.profile.batches[0]
        };
        let rows: Vec<(String, [u64; 3])> = report
            .backends
            .iter()
            .filter_map(|b| {
                b.cells
                    .iter()
                    .find(|c| {
                        c.op == op
                            && c.batch == batch
                            && c.callers == callers
                            && c.value_size == value_size
                    })
                    .map(|c| {
                        (
                            b.name.clone(),
                            [c.adapter.p50_us, c.adapter.p99_us, c.adapter.p999_us],
                        )
                    })
            })
            .collect();
        s.push_str(&latency_chart(
            &format!(
                "{} latency, batch {batch}, {callers} callers, {value_size} B",
                op.name()
            ),
            &rows,
        ));
    }
    s.push_str("</div><h2>Every figure</h2><table><tr><th>backend</th><th>op</th><th>batch</th><th>callers</th><th>value B</th><th>keys/s</th><th>p50 us</th><th>p99 us</th><th>p999 us</th><th>raw keys/s</th><th>adapter/raw</th><th>CPU us/key adapter/raw</th><th>errors</th></tr>");
    for b in &report.backends {
        for c in &b.cells {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&b.name),
                c.op.name(),
                c.batch,
                c.callers,
                c.value_size,
                fmt_rate(c.adapter.keys_per_sec),
                c.adapter.p50_us,
                c.adapter.p99_us,
                c.adapter.p999_us,
                c.raw.as_ref().map(|r| fmt_rate(r.keys_per_sec)).unwrap_or_else(|| "-".into()),
                fmt_ratio(c),
                fmt_cpu(c),
                c.adapter.errors
            );
        }
    }
    s.push_str("</table><h2>bulk_put</h2><table><tr><th>backend</th><th>value B</th><th>rows</th><th>seconds</th><th>rows/s</th></tr>");
    for b in &report.backends {
        for (size, f) in &b.bulk {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{size}</td><td>{}</td><td>{:.2}</td><td>{}</td></tr>",
                esc(&b.name),
                f.keys,
                f.secs,
                fmt_rate(f.keys_per_sec)
            );
        }
    }
    s.push_str("</table></body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_date_is_well_formed() {
        let d = utc_now();
        assert_eq!(d.len(), 23, "{d}");
        assert!(d.starts_with("20") && d.ends_with(" UTC"), "{d}");
    }

    #[test]
    fn chart_has_one_polyline_per_series() {
        let svg = line_chart(
            "t",
            &[1, 10],
            &[
                ("a".into(), vec![Some(10.0), Some(1000.0)]),
                ("b".into(), vec![Some(5.0), None]),
            ],
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
