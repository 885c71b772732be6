//! The Grafana dashboard (`docs/grafana/ferry.json`) and the Prometheus alert rules
//! (`docs/prometheus/ferry-alerts.yml`) query only metrics the node exports: every metric the
//! node's crates record, read from their sources, is what the exporter serves.

use std::{collections::BTreeSet, path::Path};

const DASHBOARD: &str = include_str!("../../../docs/grafana/ferry.json");
const ALERTS: &str = include_str!("../../../docs/prometheus/ferry-alerts.yml");

/// The crates whose metrics the node exports.
const NODE_CRATES: [&str; 6] = ["storage", "messaging", "rpc", "sink", "ha", "node"];

/// Every series name the node's sources record: `metrics::counter!("name"...)` and the like;
/// a histogram also as its `_bucket`, `_sum` and `_count` series.
fn exported() -> BTreeSet<String> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut names = BTreeSet::new();
    for name in NODE_CRATES {
        visit(&crates.join(name).join("src"), &mut |text| {
            for (macro_name, histogram) in
                [("counter!(", false), ("gauge!(", false), ("histogram!(", true)]
            {
                for (at, _) in text.match_indices(&format!("metrics::{macro_name}")) {
                    let rest = &text[at..];
                    let Some(open) = rest.find('"') else { continue };
                    let Some(close) = rest[open + 1..].find('"') else { continue };
                    let metric = &rest[open + 1..open + 1 + close];
                    names.insert(metric.to_owned());
                    if histogram {
                        for suffix in ["_bucket", "_sum", "_count"] {
                            names.insert(format!("{metric}{suffix}"));
                        }
                    }
                }
            }
        });
    }
    names
}

fn visit(dir: &Path, read: &mut impl FnMut(&str)) {
    for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            visit(&path, read);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            read(&std::fs::read_to_string(&path).unwrap());
        }
    }
}

/// The `ferry_*` series an expression names.
fn queried(expression: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in expression.match_indices("ferry_") {
        let starts_word = at == 0
            || !expression.as_bytes()[at - 1].is_ascii_alphanumeric()
                && expression.as_bytes()[at - 1] != b'_';
        if starts_word {
            let name: String = expression[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            names.push(name);
        }
    }
    names
}

fn dashboard_expressions() -> Vec<String> {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let mut expressions: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|panel| panel["targets"].as_array().unwrap().iter())
        .map(|target| target["expr"].as_str().unwrap().to_owned())
        .collect();
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        expressions.push(variable["query"].as_str().unwrap().to_owned());
    }
    expressions
}

fn alert_expressions() -> Vec<String> {
    ALERTS
        .lines()
        .filter_map(|line| line.trim().strip_prefix("expr:"))
        .map(|expression| expression.trim().to_owned())
        .collect()
}

#[test]
fn the_dashboard_and_the_alerts_query_only_exported_metrics() {
    let exported = exported();
    assert!(
        exported.contains("ferry_lag_blocks") && exported.contains("ferry_commit_seconds_bucket")
    );
    for (source, expressions) in [
        ("docs/grafana/ferry.json", dashboard_expressions()),
        ("docs/prometheus/ferry-alerts.yml", alert_expressions()),
    ] {
        assert!(expressions.len() >= 5, "{source} has its expressions");
        for expression in &expressions {
            let names = queried(expression);
            assert!(!names.is_empty(), "{source}: {expression} queries no ferry metric");
            for name in names {
                assert!(
                    exported.contains(&name),
                    "{source} queries {name}, which the node does not export ({expression})"
                );
            }
        }
    }
}

#[test]
fn the_dashboard_covers_what_operators_watch_and_the_alerts_what_pages_them() {
    let shown: BTreeSet<String> = dashboard_expressions().iter().flat_map(|e| queried(e)).collect();
    for watched in [
        "ferry_lag_blocks",
        "ferry_messages_stored_total",
        "ferry_commit_seconds_bucket",
        "ferry_reorgs_total",
        "ferry_upstream_errors_total",
        "ferry_upstream_backoff_seconds",
        "ferry_rpc_subscriptions",
        "ferry_messages",
        "ferry_sink_lag_seq",
        "ferry_upstream_switches_total",
        "ferry_l1_disagreements_total",
    ] {
        assert!(shown.contains(watched), "the dashboard shows {watched}");
    }
    let alerts = ALERTS;
    for alert in [
        "FerryLagging",
        "FerryUpstreamDown",
        "FerryNonceGaps",
        "FerryDeepReorgHalt",
        "FerryL1EndpointsDisagree",
        "FerryL1AnswersDisproved",
    ] {
        assert!(alerts.contains(&format!("alert: {alert}")), "an alert rule {alert}");
    }
    // A name that is not exported is caught.
    assert!(!exported().contains("ferry_no_such_metric"));
    assert_eq!(queried("rate(ferry_a_total[5m]) / ferry_b"), ["ferry_a_total", "ferry_b"]);
}
