use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use rdkafka::message::{Headers, OwnedHeaders};
use tracing_subscriber::layer::SubscriberExt;

use super::*;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// Runs `body` under a subscriber that exports to memory; answers the spans.
fn traced(body: impl FnOnce()) -> Vec<SpanData> {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    tracing::subscriber::with_default(subscriber, body);
    drop(provider.force_flush());
    exporter.get_finished_spans().expect("spans")
}

#[test]
fn a_span_continues_the_callers_trace_and_hands_it_on() {
    let mut handed_on = None;
    let spans = traced(|| {
        let span = tracing::info_span!(target: TARGET, "step");
        continue_from(&span, Some(PARENT), Some("vendor=1"));
        let _entered = span.enter();
        handed_on = context_of(&span);
    });
    let (traceparent, tracestate) = handed_on.expect("a context");
    assert_eq!(&traceparent[3..35], TRACE_ID);
    assert_ne!(
        &traceparent[36..52],
        "00f067aa0ba902b7",
        "the span's own id"
    );
    assert_eq!(tracestate.as_deref(), Some("vendor=1"));
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].span_context.trace_id().to_string(), TRACE_ID);
    assert_eq!(spans[0].parent_span_id.to_string(), "00f067aa0ba902b7");
}

#[test]
fn a_malformed_traceparent_starts_a_trace_of_its_own() {
    let spans = traced(|| {
        let span = tracing::info_span!(target: TARGET, "step");
        continue_from(&span, Some("00-nonsense"), None);
        drop(span.enter());
    });
    assert_eq!(spans.len(), 1);
    assert_ne!(spans[0].span_context.trace_id().to_string(), TRACE_ID);
}

#[test]
fn kafka_headers_carry_the_context_both_ways() {
    let spans = traced(|| {
        let span = tracing::info_span!(target: TARGET, "produce");
        continue_from(&span, Some(PARENT), Some("vendor=1"));
        let _entered = span.enter();
        let traceparent = current_traceparent(None).expect("inside a span");
        let headers = kafka_headers(OwnedHeaders::new(), Some(&traceparent));
        assert_eq!(headers.count(), 2);
        let (parent, state) = kafka_context(&headers);
        assert_eq!(parent, Some(traceparent.as_str()));
        assert_eq!(state, Some("vendor=1"));

        let consumer = tracing::info_span!(target: TARGET, "consume");
        continue_from_kafka(&consumer, Some(&headers), None);
        let (child, _) = context_of(&consumer).expect("a context");
        assert_eq!(&child[3..35], TRACE_ID);
    });
    assert_eq!(spans.len(), 2);
}

#[test]
fn a_batch_span_links_to_the_records_it_applied() {
    let spans = traced(|| {
        let batch = tracing::info_span!(target: TARGET, "batch");
        link_to(&batch, Some(PARENT));
        link_to(&batch, None);
        drop(batch.enter());
    });
    assert_eq!(spans[0].links.len(), 1);
    assert_eq!(
        spans[0].links[0].span_context.trace_id().to_string(),
        TRACE_ID
    );
}

#[test]
fn without_an_exporter_the_inherited_context_passes_through() {
    // No subscriber in this thread: every span is disabled.
    let span = tracing::info_span!(target: TARGET, "step");
    continue_from(&span, Some(PARENT), None);
    assert_eq!(context_of(&span), None);
    let _entered = span.enter();
    assert_eq!(
        current_traceparent(Some(&PARENT.to_owned())).as_deref(),
        Some(PARENT)
    );
    assert_eq!(current_traceparent(None), None);
    let headers = kafka_headers(OwnedHeaders::new(), Some(PARENT));
    assert_eq!(kafka_context(&headers), (Some(PARENT), None));
}

#[test]
fn json_log_lines_inside_a_traced_span_carry_its_ids() {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let provider = SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")))
        .with(json_layer().with_writer(move || writer.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!(target: TARGET, "step");
        continue_from(&span, Some(PARENT), None);
        let _entered = span.enter();
        tracing::info!(order = 7, "inside");
    });
    let text = String::from_utf8(buffer.0.lock().expect("buffer").clone()).expect("utf-8");
    let line: serde_json::Value = serde_json::from_str(text.trim()).expect("one JSON line");
    assert_eq!(line["trace_id"], TRACE_ID);
    assert_eq!(line["span_id"].as_str().map(str::len), Some(16));
    assert_eq!(line["fields"]["message"], "inside");
    assert_eq!(line["level"], "INFO");
}
