//! The Prometheus text format (0.0.4) from the OpenMetrics text that `prometheus-client`
//! writes, for scrapers that do not ask for OpenMetrics.
//!
//! `prometheus-client` writes OpenMetrics only. Prometheus itself asks for it and gets it,
//! but `promtool check metrics`, `curl` and many agents read the older format, in which
//! a counter's `HELP`/`TYPE` lines carry the sample's `_total` name, there is no `UNIT`
//! and no `# EOF`. The Go client library makes the same choice per request; this is that
//! negotiation, not a second encoder: every sample line passes through unchanged.

/// The content type of OpenMetrics text.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of the Prometheus text format.
pub const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether an `Accept` header asks for OpenMetrics (Prometheus sends it first).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// Rewrites OpenMetrics text as the Prometheus text format.
pub fn to_prometheus(openmetrics: &str) -> String {
    let counters: Vec<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .filter(|name| !name.ends_with("_total"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        match descriptor(line) {
            Some((kind, name, rest)) if counters.contains(&name) => {
                out.push_str(&format!("# {kind} {name}_total{rest}"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// `# HELP name rest` or `# TYPE name rest` as (kind, name, " rest").
fn descriptor(line: &str) -> Option<(&str, &str, &str)> {
    let body = line.strip_prefix("# ")?;
    let (kind, after) = body.split_once(' ')?;
    if kind != "HELP" && kind != "TYPE" {
        return None;
    }
    let end = after.find(' ').unwrap_or(after.len());
    Some((kind, &after[..end], &after[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_take_their_total_name_and_the_openmetrics_only_lines_go() {
        let om = "# HELP x_requests Requests.\n# TYPE x_requests counter\nx_requests_total{outcome=\"ok\"} 3\n\
                  # HELP x_lag_seconds Lag.\n# TYPE x_lag_seconds gauge\n# UNIT x_lag_seconds seconds\nx_lag_seconds 1.5\n# EOF\n";
        assert_eq!(
            to_prometheus(om),
            "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\nx_requests_total{outcome=\"ok\"} 3\n\
             # HELP x_lag_seconds Lag.\n# TYPE x_lag_seconds gauge\nx_lag_seconds 1.5\n"
        );
    }

    #[test]
    fn prometheus_asks_for_openmetrics_and_curl_does_not() {
        assert!(wants_openmetrics(Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
    }
}
