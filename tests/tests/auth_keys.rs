//! Attack: mint an admin token offline with the published development
//! secret, or with any short guessable one, and use it. The services (and
//! `mint-token`) refuse to run without a configured key unless started in
//! the explicit development mode; asymmetric keys let the query API verify
//! without being able to mint, and tokens of another issuer, audience or
//! with a too long life are refused.

use std::process::Output;
use std::time::Duration;

use events::auth::keys::DEVELOPMENT_SECRET;
use events::auth::{AuthConfig, KeySource};
use events::command::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use tests::{Service, TestEnv};

const CLI: &str = env!("CARGO_BIN_EXE_service-cli");

/// An Ed25519 key pair used only by this test.
const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIKfSOpUbCgbXd5mCGHx3uoxYK1b8lKIMTpey7pcDsKSC
-----END PRIVATE KEY-----
";
const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEARNoXtN6/jIuqWXSkDSmfJnF1V9JSYkG9t2rvPPedQ18=
-----END PUBLIC KEY-----
";

/// Runs the real command line with only `vars` in its environment; a
/// service that does start is killed after the deadline and reported so.
async fn run(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let child = tokio::process::Command::new(CLI)
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        // Should it start anyway, it uses topics and a database of its own.
        .env(
            "TOPIC_PREFIX",
            format!("t{}.", uuid::Uuid::new_v4().simple()),
        )
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starting service-cli");
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{args:?} kept running instead of refusing to start"))
        .expect("waiting for service-cli")
}

async fn get(service: &Service, path: &str, token: &str) -> reqwest::Response {
    let request = service.http.get(service.url(path)).bearer_auth(token);
    request.send().await.expect("GET failed")
}

fn assert_refused(output: &Output, reason: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started: {stderr}");
    assert!(stderr.contains(reason), "{reason:?} not in: {stderr}");
}

#[tokio::test]
async fn services_refuse_to_start_without_a_key_unless_in_development_mode() {
    let serve = ["command", "serve", "--http-addr", "127.0.0.1:0"];
    let query = ["query-api", "--http-addr", "127.0.0.1:0"];
    for args in [&serve[..], &query[..]] {
        assert_refused(&run(args, &[]).await, "no token signing key configured");
        assert_refused(
            &run(args, &[("JWT_SECRET", "secret")]).await,
            "at least 32 are required",
        );
        assert_refused(
            &run(args, &[("JWT_SECRET", DEVELOPMENT_SECRET)]).await,
            "published development secret",
        );
    }
}

#[tokio::test]
async fn mint_token_needs_a_key_or_development_mode() {
    let mint = [
        "command",
        "mint-token",
        "--role",
        "admin",
        "--sub",
        "mallory",
    ];
    assert_refused(&run(&mint, &[]).await, "no token signing key configured");
    assert_refused(
        &run(&mint, &[("JWT_SECRET", "short")]).await,
        "at least 32 are required",
    );
    let long = [&mint[..], &["--ttl", "30d"]].concat();
    let secret = [("JWT_SECRET", tests::JWT_SECRET)];
    assert_refused(&run(&long, &secret).await, "exceeds the maximum");
    let ok = run(&mint, &secret).await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    // The development mode mints with the published secret, which a
    // configured deployment does not accept.
    let dev = run(&mint, &[("COMMERCE_DEV", "1")]).await;
    assert!(
        dev.status.success(),
        "{}",
        String::from_utf8_lossy(&dev.stderr)
    );
    let env = TestEnv::new();
    let _views = env.spawn_projections().await;
    let query = env.spawn_query_api().await;
    let forged = String::from_utf8(dev.stdout).unwrap();
    let sales = get(&query, "/dead-letters", forged.trim()).await;
    assert_eq!(sales.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_query_api_with_only_the_public_key_verifies_tokens_of_the_private_key() {
    let dir = std::env::temp_dir().join(format!("auth-keys-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let private = dir.join("ed25519.pem");
    std::fs::write(&private, ED_PRIVATE).unwrap();
    let minted = run(
        &[
            "command",
            "mint-token",
            "--role",
            "customer",
            "--sub",
            "alice",
            "--jwt-algorithm",
            "EdDSA",
            "--jwt-private-key-file",
            private.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let token = String::from_utf8(minted.stdout).unwrap().trim().to_owned();

    let env = TestEnv::new();
    let _views = env.spawn_projections().await;
    let public_key = KeySource::PublicKeyPem {
        pem: ED_PUBLIC.as_bytes().to_vec(),
        algorithm: Algorithm::EdDSA,
    };
    let auth = AuthConfig::with_keys(public_key, tests::auth_config().signing);
    let query = env
        .spawn_query_api_with(query_api::Config {
            auth,
            ..env.query_api_config()
        })
        .await;
    let mine = get(&query, "/customers/alice/orders", &token).await;
    assert_eq!(mine.status(), StatusCode::OK);

    // HS256 keyed with the public key (algorithm confusion), another
    // audience or issuer, and a token living for a year: all refused.
    let now = chrono::Utc::now().timestamp();
    let claims = |extra: serde_json::Value| {
        let mut claims = serde_json::json!({"sub": "alice", "role": "admin", "iss": "commerce",
            "aud": "commerce-api", "iat": now, "exp": now + 600});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    };
    let ed = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
    let sign = |claims: &serde_json::Value| {
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &ed).unwrap()
    };
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(serde_json::json!({})),
        &EncodingKey::from_secret(ED_PUBLIC.as_bytes()),
    )
    .unwrap();
    let attacks = [
        confused,
        sign(&claims(serde_json::json!({"aud": "another-api"}))),
        sign(&claims(serde_json::json!({"iss": "someone-else"}))),
        sign(&claims(serde_json::json!({"exp": now + 365 * 86_400}))),
        tests::auth::token(Role::Admin, "ops"),
    ];
    for attack in attacks {
        let answer = get(&query, "/dead-letters", &attack).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{attack}");
    }
    let admin = sign(&claims(serde_json::json!({})));
    assert_eq!(
        get(&query, "/dead-letters", &admin).await.status(),
        StatusCode::OK
    );
}

/// An Ed25519 key and its JWKS (key id `k1`), as an identity provider
/// publishes them.
const JWKS_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIN2wNdgp4pbXdZb3Ye8zC+qDaOVSkhwYUKUf8Mmsbk/q
-----END PRIVATE KEY-----
";
const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","use":"sig",
    "x":"q_8GGZ1jPd7GKfJULlMi9KrD2WI3R3DJjvqM2R2MHkY"}]}"#;

#[derive(clap::Parser)]
struct Flags {
    #[command(flatten)]
    auth: events::auth::AuthArgs,
}

#[tokio::test]
async fn a_query_api_fetches_a_jwks_and_verifies_by_key_id() {
    use clap::Parser;
    // The identity provider's JWKS endpoint.
    let provider = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/jwks.json", provider.local_addr().unwrap());
    let app = axum::Router::new().route("/jwks.json", axum::routing::get(|| async { JWKS }));
    tokio::spawn(async move { axum::serve(provider, app).await });

    // A service verifying with a JWKS needs its own signing key; the one
    // the test's projector signs cache entries with is put in its place.
    let signing_key = "a-signing-key-of-more-than-32-bytes-for-this-test";
    let flags = Flags::parse_from([
        "query-api",
        "--jwt-jwks",
        &jwks_url,
        "--signing-key",
        signing_key,
    ]);
    let auth = events::auth::AuthConfig {
        signing: tests::auth_config().signing,
        ..flags.auth.config().await.expect("the JWKS is fetched")
    };
    let env = TestEnv::new();
    let _views = env.spawn_projections().await;
    let query = env
        .spawn_query_api_with(query_api::Config {
            auth,
            ..env.query_api_config()
        })
        .await;

    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({"sub": "ops", "role": "admin", "iss": "commerce",
        "aud": "commerce-api", "iat": now, "exp": now + 600});
    let signed = |kid: &str, pem: &str| {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        let key = EncodingKey::from_ed_pem(pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let issued = signed("k1", JWKS_PRIVATE);
    assert_eq!(
        get(&query, "/dead-letters", &issued).await.status(),
        StatusCode::OK
    );
    // Another key claiming the published key id, a key id the set does not
    // hold, and a development-secret token: all refused.
    for forged in [
        signed("k1", ED_PRIVATE),
        signed("k2", JWKS_PRIVATE),
        tests::auth::token(Role::Admin, "ops"),
    ] {
        let answer = get(&query, "/dead-letters", &forged).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{forged}");
    }
}
