//! Logs and distributed traces: the one place every service sets them up.
//!
//! Logs go to stderr, as text or (`LOG_FORMAT=json`) one JSON object a line.
//! Traces are OpenTelemetry spans exported over OTLP/HTTP, and only when an
//! endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`, or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); the usual `OTEL_*` variables
//! (`OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_SCHEDULE_DELAY`, ...)
//! apply. Without an endpoint, every span of the trace (they all use the
//! target [`TARGET`]) is switched off at its call site by the log filter, so
//! tracing then costs one cached interest check per span and nothing else.
//!
//! The W3C trace context (`traceparent`, `tracestate`) crosses HTTP and Kafka:
//! [`continue_from_http`] and [`continue_from_kafka`] make a span the child of
//! the caller's, [`current_traceparent`] is what an outgoing envelope carries
//! and [`kafka_headers`] what an outgoing record carries.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The target of every span that belongs to a trace (`tracing::info_span!(target: TARGET, ..)`).
pub const TARGET: &str = "otel";

/// The W3C header names, the same on HTTP requests and Kafka records.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Flushes the spans still queued when the service stops.
#[must_use = "dropping the guard flushes and stops the exporter"]
pub struct Guard(Option<SdkTracerProvider>);

impl Guard {
    /// Whether spans are exported.
    pub fn tracing(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            drop(provider.shutdown());
        }
    }
}

/// Whether an OTLP endpoint is configured in the environment.
pub fn endpoint_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

/// Installs the process-wide subscriber: logs filtered by `RUST_LOG` (default
/// `info`), and spans exported as `service` when an endpoint is configured.
/// A second call (tests start several services in one process) changes nothing.
pub fn init(service: &'static str) -> Guard {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = if endpoint_configured() {
        match provider(service) {
            Ok(provider) => Some(provider),
            Err(e) => {
                eprintln!("telemetry: no trace export ({e})");
                None
            }
        }
    } else {
        None
    };
    // The trace's spans live or die by the exporter, whatever RUST_LOG says.
    let spans = if provider.is_some() {
        "otel=info"
    } else {
        "otel=off"
    };
    filter = filter.add_directive(spans.parse().expect("a static directive"));
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer(service)));
    let (text, json) = if std::env::var("LOG_FORMAT").as_deref() == Ok("json") {
        (None, Some(json_layer()))
    } else {
        let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
        (Some(layer), None)
    };
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(text)
        .with(json)
        .try_init();
    match installed {
        Ok(()) => Guard(provider),
        // Someone else's subscriber runs (a second service in a test process):
        // ours would never see a span, so it must not hold an exporter either.
        Err(_) => Guard(None),
    }
}

/// One JSON object a line: `timestamp`, `level`, `target`, `fields` (with
/// the `message`), the current `span` and the `spans` it is in, and, inside
/// a span of an exported trace, its `trace_id` and `span_id`.
fn json_layer<S>() -> json_subscriber::JsonLayer<S, fn() -> std::io::Stderr>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use tracing_opentelemetry::OtelData;
    let mut layer = json_subscriber::JsonLayer::stderr();
    layer
        .with_timer("timestamp", tracing_subscriber::fmt::time::SystemTime)
        .with_level("level")
        .with_target("target")
        .with_event("fields")
        .with_current_span("span")
        .with_span_list("spans");
    layer.add_from_extension::<OtelData, _, _>("trace_id", |otel| {
        otel.trace_id().map(|id| id.to_string())
    });
    layer.add_from_extension::<OtelData, _, _>("span_id", |otel| {
        otel.span_id().map(|id| id.to_string())
    });
    layer
}

fn provider(service: &'static str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| e.to_string())?;
    let resource = opentelemetry_sdk::Resource::builder();
    let resource = if std::env::var("OTEL_SERVICE_NAME").is_ok() {
        resource.build()
    } else {
        resource.with_service_name(service).build()
    };
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

struct Pairs<'a>(Vec<(&'a str, &'a str)>);

impl Extractor for Pairs<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }
}

#[derive(Default)]
struct Collected(Vec<(String, String)>);

impl Injector for Collected {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_owned(), value));
    }
}

/// Makes `span` the child of the remote span `traceparent` names (the
/// `tracestate` rides along); a missing or malformed one leaves it a root.
pub fn continue_from(span: &tracing::Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    if span.is_disabled() {
        return;
    }
    let mut pairs = vec![(TRACEPARENT, traceparent)];
    pairs.extend(tracestate.map(|state| (TRACESTATE, state)));
    let cx = TraceContextPropagator::new().extract(&Pairs(pairs));
    if cx.span().span_context().is_valid() {
        drop(span.set_parent(cx));
    }
}

/// [`continue_from`] with the context of an HTTP request's headers.
pub fn continue_from_http(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    let get = |name| headers.get(name).and_then(|v| v.to_str().ok());
    continue_from(span, get(TRACEPARENT), get(TRACESTATE));
}

/// The `traceparent` and `tracestate` headers of a Kafka record, if any.
pub fn kafka_context<H: Headers>(headers: &H) -> (Option<&str>, Option<&str>) {
    let get = |name: &str| {
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
    };
    (get(TRACEPARENT), get(TRACESTATE))
}

/// [`continue_from`] with the context of a Kafka record; `fallback` (the
/// envelope's traceparent) serves records written without the headers.
pub fn continue_from_kafka<H: Headers>(
    span: &tracing::Span,
    headers: Option<&H>,
    fallback: Option<&str>,
) {
    if span.is_disabled() {
        return;
    }
    let (traceparent, tracestate) = headers.map(kafka_context).unwrap_or_default();
    continue_from(span, traceparent.or(fallback), tracestate);
}

/// The W3C context of `span`, when it is exported: `(traceparent, tracestate)`.
pub fn context_of(span: &tracing::Span) -> Option<(String, Option<String>)> {
    if span.is_disabled() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut out = Collected::default();
    TraceContextPropagator::new().inject_context(&cx, &mut out);
    let mut traceparent = None;
    let mut tracestate = None;
    for (key, value) in out.0 {
        match key.as_str() {
            TRACEPARENT => traceparent = Some(value),
            TRACESTATE if !value.is_empty() => tracestate = Some(value),
            _ => {}
        }
    }
    traceparent.map(|parent| (parent, tracestate))
}

/// The `traceparent` an outgoing envelope carries: the current span's when
/// traces are exported, else `inherited` (what the cause carried), so a
/// caller's context survives even in a service that does not export.
pub fn current_traceparent(inherited: Option<&String>) -> Option<String> {
    context_of(&tracing::Span::current())
        .map(|(parent, _)| parent)
        .or_else(|| inherited.cloned())
}

/// `headers` plus `traceparent` (and the current span's `tracestate`, when it
/// belongs to the same trace) for an outgoing record.
pub fn kafka_headers(mut headers: OwnedHeaders, traceparent: Option<&str>) -> OwnedHeaders {
    let Some(traceparent) = traceparent else {
        return headers;
    };
    headers = headers.insert(Header {
        key: TRACEPARENT,
        value: Some(traceparent.as_bytes()),
    });
    if let Some((current, Some(state))) = context_of(&tracing::Span::current())
        && same_trace(&current, traceparent)
    {
        headers = headers.insert(Header {
            key: TRACESTATE,
            value: Some(state.as_bytes()),
        });
    }
    headers
}

fn same_trace(a: &str, b: &str) -> bool {
    a.get(3..35).is_some_and(|id| b.get(3..35) == Some(id))
}

/// Links `span` to the record whose context is `traceparent` (a batch span
/// that applied records of many traces).
pub fn link_to(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    if span.is_disabled() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&Pairs(vec![(TRACEPARENT, traceparent)]));
    let linked: SpanContext = cx.span().span_context().clone();
    if linked.is_valid() {
        span.add_link(linked);
    }
}

#[cfg(test)]
mod tests;
