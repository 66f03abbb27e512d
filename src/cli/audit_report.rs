//! `lakeshare audit report`: a per-partner access report from the audit log (Markdown or
//! HTML with an inline SVG chart of activity per day).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::audit::AuditEvent;

/// The figures of a report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Figures {
    /// Requests in the period.
    pub requests: usize,
    /// Requests by kind.
    pub by_kind: BTreeMap<String, usize>,
    /// Per table (`share.schema.table`): data requests (query, changes) and versions read.
    pub tables: BTreeMap<String, (usize, BTreeSet<i64>)>,
    /// Per table: files and bytes vended.
    pub vended: BTreeMap<String, (u64, u64)>,
    /// Refused requests by status.
    pub denials: BTreeMap<u16, usize>,
    /// Source addresses.
    pub source_ips: BTreeSet<String>,
    /// Requests per UTC day (`YYYY-MM-DD`).
    pub per_day: BTreeMap<String, usize>,
}

/// Computes the figures of `events` (already filtered to one recipient and period).
pub fn figures(events: &[AuditEvent]) -> Figures {
    let mut f = Figures {
        requests: events.len(),
        ..Figures::default()
    };
    for e in events {
        *f.by_kind.entry(e.kind.clone()).or_default() += 1;
        if e.status >= 400 {
            *f.denials.entry(e.status).or_default() += 1;
        }
        if let Some(ip) = &e.client_ip {
            f.source_ips.insert(ip.clone());
        }
        if let Some(d) = chrono::DateTime::from_timestamp_millis(e.at_ms) {
            *f.per_day
                .entry(d.format("%Y-%m-%d").to_string())
                .or_default() += 1;
        }
        if matches!(e.kind.as_str(), "query" | "changes" | "async_query") && e.status < 400 {
            let name = format!(
                "{}.{}.{}",
                e.share.as_deref().unwrap_or_default(),
                e.schema.as_deref().unwrap_or_default(),
                e.table.as_deref().unwrap_or_default()
            );
            let entry = f.tables.entry(name.clone()).or_default();
            entry.0 += 1;
            if let Some(v) = e.table_version {
                entry.1.insert(v);
            }
            let v = f.vended.entry(name).or_default();
            v.0 += e.files.unwrap_or(0);
            v.1 += e.bytes.unwrap_or(0);
        }
    }
    f
}

fn versions(v: &BTreeSet<i64>) -> String {
    if v.is_empty() {
        "-".to_owned()
    } else {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Markdown.
pub fn markdown(recipient: &str, period: &str, f: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Access report: {recipient}\n\nPeriod: {period}\n");
    let _ = writeln!(out, "Requests: **{}**\n", f.requests);
    let _ = writeln!(out, "| Kind | Requests |\n|---|---:|");
    for (k, n) in &f.by_kind {
        let _ = writeln!(out, "| {k} | {n} |");
    }
    let _ = writeln!(
        out,
        "\n## Tables read\n\n| Table | Data requests | Versions read | Files | Bytes |\n\
         |---|---:|---|---:|---:|"
    );
    for (t, (n, v)) in &f.tables {
        let (files, bytes) = f.vended.get(t).copied().unwrap_or_default();
        let _ = writeln!(out, "| {t} | {n} | {} | {files} | {bytes} |", versions(v));
    }
    let _ = writeln!(
        out,
        "\n## Refused requests\n\n| Status | Count |\n|---|---:|"
    );
    for (s, n) in &f.denials {
        let _ = writeln!(out, "| {s} | {n} |");
    }
    let _ = writeln!(out, "\n## Source addresses\n");
    for ip in &f.source_ips {
        let _ = writeln!(out, "- {ip}");
    }
    let max = f.per_day.values().copied().max().unwrap_or(1).max(1);
    let _ = writeln!(out, "\n## Activity per day\n\n```");
    for (day, n) in &f.per_day {
        let bar = "#".repeat((n * 40).div_ceil(max));
        let _ = writeln!(out, "{day} {bar} {n}");
    }
    let _ = writeln!(out, "```");
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// HTML with an inline SVG bar chart.
pub fn html(recipient: &str, period: &str, f: &Figures) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Access report: {r}</title>\
         </head><body><h1>Access report: {r}</h1><p>Period: {p}</p><p>Requests: <b>{n}</b></p>",
        r = esc(recipient),
        p = esc(period),
        n = f.requests
    );
    let max = f.per_day.values().copied().max().unwrap_or(1).max(1);
    let width = 40 * f.per_day.len().max(1);
    let _ = write!(
        out,
        "<h2>Activity per day</h2><svg id=\"activity\" width=\"{width}\" height=\"140\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, (day, n)) in f.per_day.iter().enumerate() {
        let h = (n * 100).div_ceil(max);
        let _ = write!(
            out,
            "<rect x=\"{}\" y=\"{}\" width=\"30\" height=\"{h}\" fill=\"#3b6ea5\" \
             data-day=\"{day}\" data-requests=\"{n}\"><title>{day}: {n}</title></rect>",
            i * 40 + 5,
            110 - h
        );
    }
    let _ = write!(
        out,
        "</svg><h2>Tables read</h2><table><tr><th>Table</th><th>Data requests</th><th>Versions read</th></tr>"
    );
    for (t, (n, v)) in &f.tables {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{n}</td><td>{}</td></tr>",
            esc(t),
            versions(v)
        );
    }
    let _ = write!(
        out,
        "</table><h2>Refused requests</h2><table><tr><th>Status</th><th>Count</th></tr>"
    );
    for (s, n) in &f.denials {
        let _ = write!(out, "<tr><td>{s}</td><td>{n}</td></tr>");
    }
    let _ = write!(out, "</table><h2>Source addresses</h2><ul>");
    for ip in &f.source_ips {
        let _ = write!(out, "<li>{}</li>", esc(ip));
    }
    let _ = writeln!(out, "</ul></body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, status: u16, day: i64, version: Option<i64>) -> AuditEvent {
        AuditEvent {
            kind: kind.into(),
            status,
            at_ms: 1_700_000_000_000 + day * 86_400_000,
            share: Some("s".into()),
            schema: Some("d".into()),
            table: Some("t".into()),
            table_version: version,
            client_ip: Some("10.0.0.1".into()),
            ..AuditEvent::default()
        }
    }

    #[test]
    fn figures_count_what_the_events_say() {
        let events = vec![
            ev("query", 200, 0, Some(3)),
            ev("query", 200, 0, Some(4)),
            ev("query", 404, 1, None),
            ev("list", 200, 1, None),
        ];
        let f = figures(&events);
        assert_eq!(f.requests, 4);
        assert_eq!(f.tables["s.d.t"].0, 2);
        assert_eq!(
            f.tables["s.d.t"].1.iter().copied().collect::<Vec<_>>(),
            [3, 4]
        );
        assert_eq!(f.denials[&404], 1);
        assert_eq!(f.per_day.values().copied().collect::<Vec<_>>(), [2, 2]);
        let md = markdown("acme", "all", &f);
        assert!(md.contains("| s.d.t | 2 | 3, 4 | 0 | 0 |"), "{md}");
        let page = html("acme", "all", &f);
        assert!(page.contains("data-requests=\"2\""));
    }
}
