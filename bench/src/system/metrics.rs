//! The services' own Prometheus counters, read before and after a phase so
//! a figure can say what the service did inside it (for the command
//! processor: transactions, commands per transaction, time per transaction;
//! for the projector: batches, time per phase, the age of their records).

use std::collections::HashMap;

use super::Ctx;

/// Every sample of `/metrics`, summed over label sets, by metric name, and
/// also by its full series name (`name{label="value"}`).
pub async fn scrape(http: &reqwest::Client, base_url: &str) -> HashMap<String, f64> {
    let Ok(response) = http.get(format!("{base_url}/metrics")).send().await else {
        return HashMap::new();
    };
    parse(&response.text().await.unwrap_or_default())
}

/// The command service's and the projector's metrics, scraped together.
pub async fn scrape_command_and_projector(
    ctx: &Ctx,
) -> (HashMap<String, f64>, HashMap<String, f64>) {
    tokio::join!(
        scrape(&ctx.http, &ctx.args.command_url),
        scrape(&ctx.http, &ctx.args.projections_url),
    )
}

/// How much the series `name` grew from one scrape to the next.
pub fn delta(before: &HashMap<String, f64>, after: &HashMap<String, f64>, name: &str) -> f64 {
    after.get(name).unwrap_or(&0.0) - before.get(name).unwrap_or(&0.0)
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
    let delta = |name: &str| delta(before, after, name);
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

/// What the projector did between two scrapes, in words: its batches, the
/// time each phase took, how old a batch's oldest record was at each step
/// (from its append to the log), so the lag shows where it goes, and how
/// many of the stored timelines its documents needed it remembered.
pub fn projector_summary(before: &HashMap<String, f64>, after: &HashMap<String, f64>) -> String {
    let delta = |name: &str| delta(before, after, name);
    let mean = |metric: &str, label: &str, value: &str| {
        let count = delta(&format!("{metric}_count{{{label}=\"{value}\"}}"));
        let sum = delta(&format!("{metric}_sum{{{label}=\"{value}\"}}"));
        format!(
            "{value} {:.1}",
            if count > 0.0 {
                1000.0 * sum / count
            } else {
                f64::NAN
            }
        )
    };
    let batches = delta("projection_batch_phase_seconds_count{phase=\"apply\"}");
    if batches <= 0.0 {
        return "no projector batches seen in /metrics".into();
    }
    let remembered = delta("projection_timelines_total{from=\"memory\"}");
    let timelines = delta("projection_timelines_total");
    format!(
        "projector: {batches:.0} batches, {:.1} events each; mean ms per batch: {}; \
         mean age in ms of a batch's oldest record when {}; stored timelines remembered \
         {remembered:.0} of {timelines:.0}",
        delta("projection_events_applied_total") / batches,
        ["apply", "handoff", "cache"]
            .map(|p| mean("projection_batch_phase_seconds", "phase", p))
            .join(", "),
        ["fetched", "committed", "cached"]
            .map(|a| mean("projection_record_age_seconds", "at", a))
            .join(", "),
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
        let after = parse(
            "projection_batch_phase_seconds_count{phase=\"apply\"} 4\n\
             projection_batch_phase_seconds_sum{phase=\"apply\"} 0.02\n\
             projection_events_applied_total{projection=\"orders\"} 30\n\
             projection_events_applied_total{projection=\"sagas\"} 10\n\
             projection_record_age_seconds_count{at=\"cached\"} 2\n\
             projection_record_age_seconds_sum{at=\"cached\"} 0.3\n\
             projection_timelines_total{from=\"memory\"} 9\n\
             projection_timelines_total{from=\"database\"} 3\n",
        );
        assert_eq!(
            projector_summary(&HashMap::new(), &after),
            "projector: 4 batches, 10.0 events each; mean ms per batch: apply 5.0, handoff NaN, \
             cache NaN; mean age in ms of a batch's oldest record when fetched NaN, committed NaN, \
             cached 150.0; stored timelines remembered 9 of 12"
        );
        assert_eq!(
            projector_summary(&after, &after),
            "no projector batches seen in /metrics"
        );
        let text = "p_sum{phase=\"commit\"} 0.2\np_sum{phase=\"begin\"} 0.1\n";
        let m = parse(text);
        assert_eq!(m["p_sum{phase=\"commit\"}"], 0.2);
        assert!((m["p_sum"] - 0.3).abs() < 1e-9);
    }
}
