//! Server CPU per token for each way in (issue 25): the whole `POST
//! /oauth/token` in-process, as `token_endpoint` measures it, for a secret
//! (the reference), `private_key_jwt` (an ES256 assertion, single use), a
//! federated client assertion (a GitHub-shaped RS256 token from a real
//! HTTPS issuer on loopback), a DPoP-bound token (secret + ES256 proof,
//! single use) and self-signed mutual TLS (certificate thumbprint; the
//! handshake is the TLS layer's and not in here). What the client signs is
//! made outside the timed part (`iter_batched`), so only the server's work
//! is measured. BENCHMARKS.md reports the ratios to the secret path.

#[allow(dead_code)]
#[path = "../tests/api/oidc_issuer.rs"]
mod oidc_issuer;

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use oidc_issuer::{AUDIENCE, ClientKey, Issuer, RsaSigner, github_claims, now};
use serde_json::{Value, json};
use std::sync::Arc;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Bench {
    app: appauth::App,
    issuer_url: String,
    basic: String,
}

impl Bench {
    fn post(&self, body: String, headers: &[(&str, &str)]) -> Request<Body> {
        let mut req = Request::post("/oauth/token").header("content-type", "application/x-www-form-urlencoded");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(Body::from(body)).unwrap()
    }

    async fn call(&self, req: Request<Body>) -> (u16, Value) {
        let resp = self.app.handle(req).await.unwrap();
        let status = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// An admin API call in-process with the administrator's token.
    async fn admin(&self, method: &str, path: &str, body: Value) -> Value {
        let (_, token) = self
            .call(self.post(
                "grant_type=client_credentials".into(),
                &[("authorization", &self.basic)],
            ))
            .await;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(
                "authorization",
                format!("Bearer {}", token["access_token"].as_str().unwrap()),
            )
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = self.app.handle(req).await.unwrap();
        assert!(resp.status().is_success(), "{method} {path}: {}", resp.status());
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }
}

fn credentials(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let signer = RsaSigner::new("gh-1");
    let issuer = rt.block_on(Issuer::start(json!({"keys": [signer.jwk()]})));
    let dir = tempfile::tempdir().unwrap();
    let config = appauth::Config::load(
        None,
        Vec::new(),
        &[
            "server.listen=127.0.0.1:0".into(),
            format!("store.path={}", dir.path().join("data").display()),
            format!("keys.dir={}", dir.path().join("keys").display()),
            issuer.setting(""),
            // Client certificates from a (here absent) trusted proxy: the
            // bench puts the certificate on the request as the server would.
            "server.self_signed_client_certs=true".into(),
            "server.client_cert_header=x-client-cert".into(),
            "server.trusted_proxies=192.0.2.1".into(),
        ],
    )
    .unwrap();
    let app = rt.block_on(appauth::App::build(config)).unwrap();
    let creds: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("data/initial-admin.json")).unwrap()).unwrap();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            creds["clientId"].as_str().unwrap(),
            creds["secret"].as_str().unwrap()
        ))
    );
    let b = Bench {
        issuer_url: app.issuer_url().to_owned(),
        app,
        basic,
    };
    let token_url = format!("{}/oauth/token", b.issuer_url);

    // The applications, through the admin API.
    let key = ClientKey::new("k1");
    let cert = rcgen::generate_simple_self_signed(vec!["client".to_string()]).unwrap();
    // Used assertions and proofs are kept until they expire, at most
    // 50,000 per client: the single-use benches spread over several.
    const CLIENTS: usize = 6;
    let (keyed, dpop_clients, federated, mtls) = rt.block_on(async {
        let mut keyed = Vec::new();
        let mut dpop_clients = Vec::new();
        for i in 0..CLIENTS {
            let app = b
                .admin(
                    "POST",
                    "/api/v1/apps",
                    json!({"name": format!("keyed-{i}"), "jwks": key.jwks()}),
                )
                .await;
            keyed.push(app["clientId"].as_str().unwrap().to_owned());
            let app = b
                .admin("POST", "/api/v1/apps", json!({"name": format!("dpop-{i}")}))
                .await;
            dpop_clients.push(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    app["clientId"].as_str().unwrap(),
                    app["secret"].as_str().unwrap()
                ))
            ));
        }
        let federated = b.admin("POST", "/api/v1/apps", json!({"name": "federated"})).await;
        let path = format!(
            "/api/v1/apps/{}/federated-credentials",
            federated["id"].as_str().unwrap()
        );
        b.admin(
            "POST",
            &path,
            json!({"issuer": issuer.url, "subject": "repo:acme/api:environment:prod"}),
        )
        .await;
        let mtls = b
            .admin(
                "POST",
                "/api/v1/apps",
                json!({"name": "mtls", "tlsClientAuth": {"selfSigned": [cert.cert.pem()]}}),
            )
            .await;
        (keyed, dpop_clients, federated, mtls)
    });
    let id = |v: &Value| v["clientId"].as_str().unwrap().to_owned();
    let (federated, mtls) = (id(&federated), id(&mtls));
    let turn = std::cell::Cell::new(0usize);
    let next = || {
        turn.set(turn.get().wrapping_add(1));
        turn.get() % CLIENTS
    };
    let external = signer.sign(
        json!({}),
        &github_claims(&issuer.url, "acme/api", "refs/heads/main", "prod"),
    );
    assert!(external.contains('.') && AUDIENCE.starts_with("https"));
    let presented =
        Arc::new(appauth::oauth::mtls::ClientCertificate::new(vec![cert.cert.der().clone().into_owned()]).unwrap());

    let mut g = c.benchmark_group("token_by_credential");
    g.bench_function("secret_basic", |bench| {
        bench.to_async(&rt).iter(|| async {
            let (s, _) = b
                .call(b.post("grant_type=client_credentials".into(), &[("authorization", &b.basic)]))
                .await;
            assert_eq!(s, 200);
        })
    });
    g.bench_function("private_key_jwt_es256", |bench| {
        bench.to_async(&rt).iter_batched(
            || {
                let client = &keyed[next()];
                let claims = json!({"iss": client, "sub": client, "aud": token_url, "iat": now(), "exp": now() + 30,
                    "jti": uuid::Uuid::new_v4().to_string()});
                format!(
                    "grant_type=client_credentials&client_assertion_type={ASSERTION_TYPE}&client_assertion={}",
                    key.sign(json!({}), &claims)
                )
            },
            |body| async {
                let (s, v) = b.call(b.post(body, &[])).await;
                assert_eq!(s, 200, "{v}");
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("federated_rs256", |bench| {
        let body = format!(
            "grant_type=client_credentials&client_id={federated}&client_assertion_type={ASSERTION_TYPE}&client_assertion={external}"
        );
        bench.to_async(&rt).iter(|| async {
            let (s, v) = b.call(b.post(body.clone(), &[])).await;
            assert_eq!(s, 200, "{v}");
        })
    });
    g.bench_function("dpop_es256_with_secret", |bench| {
        bench.to_async(&rt).iter_batched(
            || {
                let claims =
                    json!({"htm": "POST", "htu": token_url, "iat": now(), "jti": uuid::Uuid::new_v4().to_string()});
                let proof = key.sign(json!({"typ": "dpop+jwt", "jwk": key.jwk(), "kid": null}), &claims);
                (dpop_clients[next()].clone(), proof)
            },
            |(basic, proof)| async {
                let (basic, proof) = (basic, proof);
                let req = b.post(
                    "grant_type=client_credentials".into(),
                    &[("authorization", &basic), ("dpop", &proof)],
                );
                let (s, v) = b.call(req).await;
                assert_eq!(s, 200, "{v}");
                assert_eq!(v["token_type"], "DPoP");
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("mtls_self_signed", |bench| {
        let body = format!("grant_type=client_credentials&client_id={mtls}");
        bench.to_async(&rt).iter(|| async {
            let mut req = b.post(body.clone(), &[]);
            req.extensions_mut().insert(presented.clone());
            let (s, v) = b.call(req).await;
            assert_eq!(s, 200, "{v}");
        })
    });
    g.finish();
    drop(issuer);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = credentials
}
criterion_main!(benches);
