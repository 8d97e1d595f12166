use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::*;

const SECRET: &[u8] = b"test-secret-of-thirty-two-bytes!";

/// An Ed25519 key pair (generated with `openssl genpkey -algorithm ed25519`)
/// used only by these tests.
const ED_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIN2wNdgp4pbXdZb3Ye8zC+qDaOVSkhwYUKUf8Mmsbk/q
-----END PRIVATE KEY-----
";
const ED_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAq/8GGZ1jPd7GKfJULlMi9KrD2WI3R3DJjvqM2R2MHkY=
-----END PUBLIC KEY-----
";
/// The same public key as a JWK.
const ED_JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","use":"sig",
    "x":"q_8GGZ1jPd7GKfJULlMi9KrD2WI3R3DJjvqM2R2MHkY"}]}"#;

fn who(role: Role, subject: &str) -> Principal {
    Principal {
        subject: subject.into(),
        role,
    }
}

fn verifier() -> JwtVerifier {
    JwtVerifier::new(&AuthConfig::hs256(SECRET)).unwrap()
}

fn raw_token(claims: &serde_json::Value, secret: &[u8]) -> String {
    let key = EncodingKey::from_secret(secret);
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
}

/// Valid claims, with `extra` overriding or removing (null) some.
fn claims(extra: serde_json::Value) -> serde_json::Value {
    let now = unix_now();
    let mut claims = serde_json::json!({"sub": "u", "role": "customer", "iss": "commerce",
        "aud": "commerce-api", "iat": now, "exp": now + 600});
    for (name, value) in extra.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

#[test]
fn a_minted_token_verifies_to_the_same_principal() {
    for role in [Role::Customer, Role::Admin, Role::Carrier] {
        let token = mint_hs256(SECRET, &who(role, "user-1"), Duration::from_secs(60)).unwrap();
        assert_eq!(verifier().verify(&token), Ok(who(role, "user-1")));
    }
}

#[test]
fn a_token_signed_with_another_secret_is_refused() {
    let other = b"another-secret-of-thirty-two-byt";
    let token = mint_hs256(other, &who(Role::Admin, "ops"), Duration::from_secs(60)).unwrap();
    assert_eq!(verifier().verify(&token), Err(AuthError::BadSignature));
}

#[test]
fn short_secrets_are_refused_for_verifying_and_minting() {
    let short = AuthConfig::hs256(b"test-secret".to_vec());
    assert!(matches!(
        JwtVerifier::new(&short),
        Err(KeyError::ShortSecret(11))
    ));
    assert!(mint_hs256(b"short", &who(Role::Admin, "ops"), Duration::from_secs(60)).is_err());
}

#[test]
fn an_expired_token_is_refused() {
    let exp = unix_now() - 3600;
    let token = raw_token(
        &claims(serde_json::json!({"exp": exp, "iat": exp - 60})),
        SECRET,
    );
    assert_eq!(verifier().verify(&token), Err(AuthError::Expired));
}

#[test]
fn garbage_is_malformed() {
    for bad in ["", "abc", "a.b.c", "Bearer x.y.z"] {
        assert_eq!(verifier().verify(bad), Err(AuthError::Malformed), "{bad:?}");
    }
}

#[test]
fn missing_or_invalid_claims_are_refused() {
    let now = unix_now();
    let cases = [
        (serde_json::json!({"exp": null}), "exp"),
        (serde_json::json!({"sub": null}), "sub"),
        (serde_json::json!({"iat": null}), "iat"),
        (serde_json::json!({"iss": null}), "iss"),
        (serde_json::json!({"iss": "someone-else"}), "iss"),
        (serde_json::json!({"aud": null}), "aud"),
        (serde_json::json!({"aud": "another-api"}), "aud"),
        (serde_json::json!({"iat": now + 3600}), "iat"),
        (serde_json::json!({"role": "root"}), "role"),
        (serde_json::json!({"role": "system"}), "role"),
        (serde_json::json!({"role": null}), "role"),
        (serde_json::json!({"sub": " "}), "sub"),
        (serde_json::json!({"sub": "a\nb"}), "sub"),
    ];
    for (extra, claim) in cases {
        let token = raw_token(&claims(extra.clone()), SECRET);
        assert_eq!(
            verifier().verify(&token),
            Err(AuthError::InvalidClaim(claim)),
            "{extra}"
        );
    }
}

#[test]
fn an_audience_list_naming_this_api_is_accepted() {
    let token = raw_token(
        &claims(serde_json::json!({"aud": ["other", "commerce-api"]})),
        SECRET,
    );
    assert_eq!(verifier().verify(&token), Ok(who(Role::Customer, "u")));
}

#[test]
fn tokens_living_longer_than_the_maximum_are_neither_accepted_nor_minted() {
    let now = unix_now();
    let token = raw_token(&claims(serde_json::json!({"exp": now + 90_000})), SECRET);
    assert_eq!(verifier().verify(&token), Err(AuthError::LifetimeTooLong));
    let ttl = Duration::from_secs(90_000);
    assert!(matches!(
        mint_hs256(SECRET, &who(Role::Admin, "ops"), ttl),
        Err(AuthError::Mint(_))
    ));
}

#[test]
fn another_algorithm_than_the_configured_one_is_refused() {
    let key = EncodingKey::from_secret(SECRET);
    let token = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims(serde_json::json!({})),
        &key,
    )
    .unwrap();
    assert_eq!(verifier().verify(&token), Err(AuthError::Malformed));
}

#[test]
fn minting_refuses_system_and_invalid_subjects() {
    let ttl = Duration::from_secs(60);
    assert!(matches!(
        mint_hs256(SECRET, &who(Role::System, "saga"), ttl),
        Err(AuthError::Mint(_))
    ));
    assert!(matches!(
        mint_hs256(SECRET, &who(Role::Admin, ""), ttl),
        Err(AuthError::Mint(_))
    ));
}

fn ed_minter() -> Minter {
    let policy = TokenPolicy::default();
    Minter::from_private_pem(ED_PRIVATE.as_bytes(), Algorithm::EdDSA, &policy).unwrap()
}

#[test]
fn a_public_key_verifies_tokens_of_its_private_key_and_cannot_mint() {
    let config = AuthConfig::with_keys(
        KeySource::PublicKeyPem {
            pem: ED_PUBLIC.as_bytes().to_vec(),
            algorithm: Algorithm::EdDSA,
        },
        signing::SigningKey::development(),
    );
    let verifier = JwtVerifier::new(&config).unwrap();
    let token = ed_minter()
        .mint(&who(Role::Admin, "ops"), Duration::from_secs(60))
        .unwrap();
    assert_eq!(verifier.verify(&token), Ok(who(Role::Admin, "ops")));
    // An HS256 token keyed with the public key's text (algorithm confusion).
    let forged = raw_token(
        &claims(serde_json::json!({"role": "admin"})),
        ED_PUBLIC.as_bytes(),
    );
    assert_eq!(verifier.verify(&forged), Err(AuthError::Malformed));
    assert!(matches!(Minter::new(&config), Err(KeyError::CannotMint)));
}

#[test]
fn a_jwks_verifies_by_key_id() {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(ED_JWKS).unwrap();
    let config = AuthConfig::with_keys(KeySource::Jwks(set), signing::SigningKey::development());
    let verifier = JwtVerifier::new(&config).unwrap();
    let token = ed_minter()
        .mint(&who(Role::Carrier, "acme"), Duration::from_secs(60))
        .unwrap();
    // Without a kid the only key is used; with the right kid too.
    assert_eq!(verifier.verify(&token), Ok(who(Role::Carrier, "acme")));
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k2".into());
    let key = EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap();
    let unknown = jsonwebtoken::encode(&header, &claims(serde_json::json!({})), &key).unwrap();
    assert_eq!(verifier.verify(&unknown), Err(AuthError::BadSignature));
}

#[test]
fn bearer_schemes_are_case_insensitive_and_other_schemes_missing() {
    use axum::http::HeaderValue;
    let token = mint_hs256(SECRET, &who(Role::Admin, "ops"), Duration::from_secs(60)).unwrap();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("{scheme} {token}")).unwrap();
        headers.insert(AUTHORIZATION, value);
        assert_eq!(verifier().caller(&headers), Ok(who(Role::Admin, "ops")));
    }
    assert_eq!(
        verifier().caller(&HeaderMap::new()),
        Err(AuthError::Missing)
    );
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
    assert_eq!(verifier().caller(&headers), Err(AuthError::Missing));
    headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer  "));
    assert_eq!(verifier().caller(&headers), Err(AuthError::Malformed));
}

#[test]
fn a_request_is_verified_once_and_its_answer_kept() {
    use axum::http::{Extensions, HeaderValue};
    let token = mint_hs256(SECRET, &who(Role::Customer, "c-1"), Duration::from_secs(60)).unwrap();
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    headers.insert(AUTHORIZATION, value);
    let verifier = verifier();
    let mut extensions = Extensions::new();
    assert_eq!(
        verifier.rate_key(&headers, &mut extensions).as_deref(),
        Some("Customer:c-1")
    );
    // The handler asks next: the kept answer, not a second check (these
    // headers no longer hold a token at all).
    assert_eq!(
        verifier.request_caller(&HeaderMap::new(), &mut extensions),
        Ok(who(Role::Customer, "c-1"))
    );
    // A refusal is kept too, and another request starts afresh.
    let mut refused = Extensions::new();
    assert_eq!(verifier.rate_key(&HeaderMap::new(), &mut refused), None);
    assert_eq!(
        verifier.request_caller(&headers, &mut refused),
        Err(AuthError::Missing)
    );
    assert_eq!(
        verifier.request_caller(&headers, &mut Extensions::new()),
        Ok(who(Role::Customer, "c-1"))
    );
}

#[test]
fn a_verified_token_is_answered_again_only_until_it_expires() {
    let verifier = verifier();
    let now = unix_now();
    let token = raw_token(&claims(serde_json::json!({"exp": now + 60})), SECRET);
    assert_eq!(verifier.verify(&token), Ok(who(Role::Customer, "u")));
    assert_eq!(verifier.verify(&token), Ok(who(Role::Customer, "u")));
    // Another signature on the same claims is another token: checked in full.
    let (signed, _) = token.rsplit_once('.').unwrap();
    let forged = format!("{signed}.{}", "A".repeat(43));
    assert_eq!(verifier.verify(&forged), Err(AuthError::BadSignature));
    // Past `exp` and the skew allowance, the remembered verdict no longer holds.
    let later = now + 60 + CLOCK_SKEW_SECONDS + 1;
    assert_eq!(verifier.verify_at(&token, later), Err(AuthError::Expired));
    assert_eq!(verifier.verify(&token), Ok(who(Role::Customer, "u")));
}
