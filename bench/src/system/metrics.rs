//! The services' own Prometheus counters, read before and after a phase so
//! a figure can say what the service did inside it (for the command
//! processor: transactions, commands per transaction, time per transaction).

use std::collections::HashMap;

/// Every sample of `/metrics`, summed over label sets, by metric name, and
/// also by its full series name (`name{label="value"}`).
pub async fn scrape(http: &reqwest::Client, base_url: &str) -> HashMap<String, f64> {
    let Ok(response) = http.get(format!("{base_url}/metrics")).send().await else {
        return HashMap::new();
    };
    parse(&response.text().await.unwrap_or_default())
}

pub fn parse(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        if let Ok(value) = value.parse::<f64>() {
            *out.entry(name.to_owned()).or_default() += value;
            if name != series {
                out.insert(series.to_owned(), value);
            }
        }
    }
    out
}

/// What the command processor did between two scrapes, in words.
pub fn processor_summary(before: &HashMap<String, f64>, after: &HashMap<String, f64>) -> String {
    let delta = |name: &str| after.get(name).unwrap_or(&0.0) - before.get(name).unwrap_or(&0.0);
    let batches = delta("command_batch_seconds_count");
    if batches <= 0.0 {
        return "no processor transactions seen in /metrics".into();
    }
    let commands = delta("commands_processed_total");
    let phases: Vec<String> = ["begin", "produce", "offsets", "acks", "commit", "store"]
        .iter()
        .map(|phase| {
            let sum = delta(&format!(
                "command_txn_phase_seconds_sum{{phase=\"{phase}\"}}"
            ));
            format!("{phase} {:.1}", 1000.0 * sum / batches)
        })
        .collect();
    format!(
        "processor: {batches:.0} transactions, {:.1} commands each, {:.1} ms each on average \
         (ms per phase: {})",
        commands / batches,
        1000.0 * delta("command_batch_seconds_sum") / batches,
        phases.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_label_sets_and_skips_comments() {
        let text = "# TYPE x counter\nx{a=\"1\"} 2\nx{a=\"2\"} 3\ny_sum 0.5\ny_count 4\n";
        let m = parse(text);
        assert_eq!(m["x"], 5.0);
        assert_eq!(m["y_count"], 4.0);
        let after: HashMap<String, f64> = [
            ("command_batch_seconds_count".to_owned(), 10.0),
            ("command_batch_seconds_sum".to_owned(), 0.5),
            ("commands_processed_total".to_owned(), 40.0),
        ]
        .into();
        let s = processor_summary(&HashMap::new(), &after);
        assert_eq!(
            s,
            "processor: 10 transactions, 4.0 commands each, 50.0 ms each on average \
             (ms per phase: begin 0.0, produce 0.0, offsets 0.0, acks 0.0, commit 0.0, store 0.0)"
        );
        let text = "p_sum{phase=\"commit\"} 0.2\np_sum{phase=\"begin\"} 0.1\n";
        let m = parse(text);
        assert_eq!(m["p_sum{phase=\"commit\"}"], 0.2);
        assert!((m["p_sum"] - 0.3).abs() < 1e-9);
    }
}
