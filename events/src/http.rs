//! Serving HTTP with a limit on every door: how long a client may take to
//! send its headers and its request, how many connections and requests are
//! open at once, how often one caller may ask, and (optionally) a separate
//! listener for `/metrics` and detailed health.
//!
//! `axum::serve` has no header-read timeout, so a client that opens a
//! connection and trickles its headers (or keeps an idle connection) holds it
//! forever. [`serve`] runs hyper's HTTP/1 connection with a timer instead:
//! headers must arrive within [`HttpConfig::header_read_timeout`], which also
//! bounds how long an idle kept-alive connection waits for its next request;
//! the whole request (body included) must be answered within
//! [`HttpConfig::request_timeout`].

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::service::Problem;

/// The limits of one HTTP listener. `Default` is the production setting.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Longest a client may take to send a request's headers, and longest an
    /// idle kept-alive connection is kept.
    pub header_read_timeout: Duration,
    /// Longest a request may take from its headers to its answer (reading
    /// the body included); answered 408 after that.
    pub request_timeout: Duration,
    /// Open connections at most; further clients wait in the kernel's backlog.
    pub max_connections: usize,
    /// Requests in flight at most; more answer 503 at once.
    pub max_in_flight: usize,
    /// Requests per second each caller may make (a token's subject, else the
    /// client address); `None` turns the limit off.
    pub rate: Option<RateLimit>,
    /// When set, `/metrics` and detailed health are served only there, and
    /// the public listener's readiness says ready or not without details.
    pub ops_addr: Option<SocketAddr>,
}

/// A per-caller token bucket: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            max_in_flight: 1024,
            rate: RateLimit::new(100, 200),
            ops_addr: None,
        }
    }
}

impl RateLimit {
    /// `None` when `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<RateLimit> {
        let per_second = NonZeroU32::new(per_second)?;
        Some(RateLimit {
            per_second,
            burst: NonZeroU32::new(burst).unwrap_or(per_second),
        })
    }
}

/// The flags of [`HttpConfig`], shared by both HTTP services.
#[derive(clap::Args, Debug, Clone)]
pub struct HttpArgs {
    /// Longest a client may take to send its request headers (and longest an
    /// idle connection is kept), in milliseconds.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,
    /// Longest a request may take, body included, in milliseconds (then 408).
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,
    /// Open connections at most.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Requests in flight at most; more are answered 503 at once.
    #[arg(long, env = "HTTP_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Requests per second per caller (token subject, else client address);
    /// 0 turns the limit off. Over it: 429 with Retry-After.
    #[arg(long, env = "HTTP_RATE_PER_SECOND", default_value_t = 100)]
    pub rate_per_second: u32,
    /// Requests a caller may make at once before the rate applies.
    #[arg(long, env = "HTTP_RATE_BURST", default_value_t = 200)]
    pub rate_burst: u32,
    /// Serve `/metrics` and detailed health on this address only (e.g.
    /// 127.0.0.1:9090), not on the public listener.
    #[arg(long, env = "OPS_HTTP_ADDR")]
    pub ops_addr: Option<SocketAddr>,
}

impl From<HttpArgs> for HttpConfig {
    fn from(args: HttpArgs) -> HttpConfig {
        HttpConfig {
            header_read_timeout: Duration::from_millis(args.header_read_timeout_ms.max(1)),
            request_timeout: Duration::from_millis(args.request_timeout_ms.max(1)),
            max_connections: args.max_connections.max(1),
            max_in_flight: args.max_in_flight.max(1),
            rate: RateLimit::new(args.rate_per_second, args.rate_burst),
            ops_addr: args.ops_addr,
        }
    }
}

/// Who is calling, for the rate limit: a verified token's subject, or `None`
/// for an anonymous caller (then the client address counts). It may leave
/// what it verified in the request's extensions for the handler.
pub type CallerKey = Arc<dyn Fn(&HeaderMap, &mut Extensions) -> Option<String> + Send + Sync>;

/// Adds the request limits of `config` to `router`: the in-flight bound and
/// a request timeout (one middleware, so a request pays for one boxed future,
/// not two) and, when configured, the per-caller rate limit.
pub fn limit(router: Router, config: &HttpConfig, caller: CallerKey) -> Router {
    let bounds = Arc::new(Bounds {
        timeout: config.request_timeout,
        slots: Semaphore::new(config.max_in_flight),
    });
    let mut router = router.layer(middleware::from_fn_with_state(bounds, bound));
    if let Some(rate) = config.rate {
        let limiter = Arc::new(Limiter::new(rate, caller));
        router = router.layer(middleware::from_fn_with_state(limiter, limit_rate));
    }
    router
}

/// What every request is held to: a slot among the requests in flight, and
/// an answer within the timeout.
struct Bounds {
    timeout: Duration,
    slots: Semaphore,
}

async fn bound(State(bounds): State<Arc<Bounds>>, request: Request, next: Next) -> Response {
    let Ok(_slot) = bounds.slots.try_acquire() else {
        metrics::counter!("http_shed_total", "reason" => "in_flight").increment(1);
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests in flight; try again shortly",
        )
        .retry_after(1)
        .into_response();
    };
    match tokio::time::timeout(bounds.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("http_shed_total", "reason" => "timeout").increment(1);
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the request took too long",
            )
            .into_response()
        }
    }
}

/// Keyed token buckets, pruned as they fill up.
struct Limiter {
    buckets: DefaultKeyedRateLimiter<String>,
    caller: CallerKey,
    checks: AtomicU64,
}

/// Buckets are pruned of full (idle) callers every so many checks.
const PRUNE_EVERY: u64 = 4096;

impl Limiter {
    fn new(rate: RateLimit, caller: CallerKey) -> Limiter {
        Limiter {
            buckets: RateLimiter::keyed(Quota::per_second(rate.per_second).allow_burst(rate.burst)),
            caller,
            checks: AtomicU64::new(0),
        }
    }

    /// `Err(seconds)` when `key` must wait that long.
    fn check(&self, key: String) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.buckets.retain_recent();
            self.buckets.shrink_to_fit();
        }
        self.buckets.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.buckets.clock().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }
}

/// The client address a rate limit counts: IPv6 clients by their /64, since
/// one host usually has a whole /64 to pick addresses from.
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

async fn limit_rate(State(limiter): State<Arc<Limiter>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let key = (limiter.caller)(&parts.headers, &mut parts.extensions)
        .map(|subject| format!("sub:{subject}"))
        .or_else(|| {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| address_key(info.0.ip()))
        })
        .unwrap_or_else(|| "anonymous".to_owned());
    match limiter.check(key) {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(seconds) => {
            metrics::counter!("http_shed_total", "reason" => "rate").increment(1);
            Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this caller",
            )
            .detail(format!("try again in {} s", seconds.max(1)))
            .retry_after(seconds.max(1))
            .into_response()
        }
    }
}

/// Serves `router` on `listener` until `shutdown` is cancelled, with the
/// connection limits of `config`, then drains in-flight requests (for at
/// most the request timeout).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(config.max_connections));
    let rate_limited = config.rate.is_some();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = connections.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: back off rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Answers are small writes on kept-alive connections: without
        // TCP_NODELAY, Nagle's algorithm can hold one back until the
        // client's delayed acknowledgement (tens of milliseconds).
        drop(stream.set_nodelay(true));
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<_>| {
            // Only the rate limit reads the client's address.
            if rate_limited {
                request.extensions_mut().insert(ConnectInfo(peer));
            }
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "http connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(config.request_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("http connections still open after the drain timeout");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(address_key(mapped), "ip:10.0.0.1");
    }

    #[test]
    fn a_caller_over_its_burst_waits_and_others_do_not() {
        let limiter = Limiter::new(RateLimit::new(1, 2).unwrap(), Arc::new(|_, _| None));
        assert!(limiter.check("a".into()).is_ok());
        assert!(limiter.check("a".into()).is_ok());
        assert_eq!(limiter.check("a".into()), Err(1));
        assert!(limiter.check("b".into()).is_ok());
    }
}
