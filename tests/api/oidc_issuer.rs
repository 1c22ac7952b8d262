//! Signing keys for test JWTs (a client's ES256 key, an issuer's RS256
//! key), and a real HTTPS OIDC issuer on loopback for the federation tests
//! and the credentials bench: its own test CA (trusted through `ca_file`),
//! discovery and a JWKS it can be told to withhold, slow down, inflate or
//! redirect; and the claims GitHub Actions and Kubernetes put in their
//! tokens. It names nothing of the test binary, so a bench can include it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the external tokens in these tests are addressed to.
pub const AUDIENCE: &str = "https://appauth.test";

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A client's P-256 key: signs assertions, and its public JWK is what the
/// application registers.
pub struct ClientKey {
    pub pair: EcdsaKeyPair,
    pub kid: String,
}

impl ClientKey {
    pub fn new(kid: &str) -> Self {
        let rng = SystemRandom::new();
        let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref(), &rng).unwrap();
        Self { pair, kid: kid.into() }
    }

    pub fn jwk(&self) -> Value {
        let p = self.pair.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(&p[1..33]), "y": URL_SAFE_NO_PAD.encode(&p[33..65])})
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk()]})
    }

    /// Signs `claims` with `header` (alg and kid filled in unless given).
    pub fn sign(&self, mut header: Value, claims: &Value) -> String {
        header.as_object_mut().unwrap().entry("alg").or_insert("ES256".into());
        header
            .as_object_mut()
            .unwrap()
            .entry("kid")
            .or_insert(self.kid.clone().into());
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self.pair.sign(&SystemRandom::new(), signing_input.as_bytes()).unwrap();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }
}

/// An RS256 signing key, as GitHub Actions uses.
pub struct RsaSigner {
    pub pair: RsaKeyPair,
    pub kid: String,
}

impl RsaSigner {
    pub fn new(kid: &str) -> Self {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let der = key.to_pkcs8_der().unwrap();
        Self {
            pair: RsaKeyPair::from_pkcs8(der.as_bytes()).unwrap(),
            kid: kid.into(),
        }
    }

    pub fn jwk(&self) -> Value {
        let public: ring::rsa::PublicKeyComponents<Vec<u8>> = self.pair.public().into();
        json!({"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig",
            "n": URL_SAFE_NO_PAD.encode(&public.n), "e": URL_SAFE_NO_PAD.encode(&public.e)})
    }

    pub fn sign(&self, mut header: Value, claims: &Value) -> String {
        let h = header.as_object_mut().unwrap();
        h.entry("alg").or_insert("RS256".into());
        h.entry("kid").or_insert(self.kid.clone().into());
        h.entry("typ").or_insert("JWT".into());
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig)
            .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// How the issuer answers key requests.
#[derive(Clone)]
pub enum Mode {
    Normal,
    Down,
    Slow(Duration),
    Huge,
    RedirectTo(String),
}

pub struct IssuerState {
    pub jwks: Value,
    pub mode: Mode,
    pub jwks_fetches: usize,
    pub max_age: u64,
}

/// A real HTTPS OIDC issuer on loopback, with a CA of its own.
pub struct Issuer {
    pub url: String,
    pub ca_file: std::path::PathBuf,
    pub state: Arc<Mutex<IssuerState>>,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Issuer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Issuer {
    pub async fn start(jwks: Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "federation test CA");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let server_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        let server_key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();

        let tls = {
            use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
            let config =
                rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_no_client_auth()
                    .with_single_cert(
                        vec![CertificateDer::from(server_cert.der().to_vec())],
                        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
                    )
                    .unwrap();
            tokio_rustls::TlsAcceptor::from(Arc::new(config))
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let state = Arc::new(Mutex::new(IssuerState {
            jwks,
            mode: Mode::Normal,
            jwks_fetches: 0,
            max_age: 300,
        }));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (served_state, served_url) = (state.clone(), url.clone());
        tokio::spawn(async move {
            loop {
                let (stream, _) = tokio::select! {
                    a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                    _ = &mut stopped => return,
                };
                let (tls, state, url) = (tls.clone(), served_state.clone(), served_url.clone());
                tokio::spawn(async move {
                    let Ok(stream) = tls.accept(stream).await else { return };
                    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (state, url) = (state.clone(), url.clone());
                        async move { Ok::<_, std::convert::Infallible>(answer(&state, &url, req.uri().path()).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Issuer {
            url,
            ca_file,
            state,
            _dir: dir,
            stop: Some(stop),
        }
    }

    /// The `federation.issuers` entry trusting this issuer.
    pub fn setting(&self, extra: &str) -> String {
        format!(
            "federation.issuers=[{{issuer = \"{}\", ca_file = \"{}\", audience = \"{AUDIENCE}\"{extra}}}]",
            self.url,
            self.ca_file.display()
        )
    }

    pub fn set(&self, f: impl FnOnce(&mut IssuerState)) {
        f(&mut self.state.lock().unwrap());
    }

    pub fn fetches(&self) -> usize {
        self.state.lock().unwrap().jwks_fetches
    }
}

async fn answer(state: &Mutex<IssuerState>, url: &str, path: &str) -> hyper::Response<String> {
    let respond = |status: u16, body: String, extra: Option<(&str, String)>| {
        let mut b = hyper::Response::builder()
            .status(status)
            .header("content-type", "application/json");
        if let Some((k, v)) = extra {
            b = b.header(k, v);
        }
        b.body(body).unwrap()
    };
    let (mode, jwks, max_age) = {
        let mut st = state.lock().unwrap();
        if path == "/jwks" {
            st.jwks_fetches += 1;
        }
        (st.mode.clone(), st.jwks.clone(), st.max_age)
    };
    match (&mode, path) {
        (Mode::Down, _) => respond(503, "{}".into(), None),
        (Mode::Slow(d), _) => {
            tokio::time::sleep(*d).await;
            respond(200, jwks.to_string(), None)
        }
        (_, "/.well-known/openid-configuration") => respond(
            200,
            json!({"issuer": url, "jwks_uri": format!("{url}/jwks"), "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["RS256", "ES256"]})
            .to_string(),
            None,
        ),
        (Mode::Huge, "/jwks") => respond(
            200,
            format!("{{\"keys\": [], \"pad\": \"{}\"}}", "x".repeat(300 * 1024)),
            None,
        ),
        (Mode::RedirectTo(to), "/jwks") => {
            let mut r = respond(302, String::new(), Some(("location", to.clone())));
            *r.status_mut() = hyper::StatusCode::FOUND;
            r
        }
        (_, "/jwks") => respond(
            200,
            jwks.to_string(),
            Some(("cache-control", format!("public, max-age={max_age}"))),
        ),
        _ => respond(404, "{}".into(), None),
    }
}

/// Claims shaped exactly like a GitHub Actions OIDC token's.
pub fn github_claims(issuer: &str, repo: &str, git_ref: &str, environment: &str) -> Value {
    let t = now();
    json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": format!("repo:{repo}:environment:{environment}"),
        "aud": AUDIENCE,
        "ref": git_ref,
        "sha": "e83c5163316f89bfbde7d9ab23ca2e25604af290",
        "repository": repo,
        "repository_owner": repo.split('/').next().unwrap(),
        "repository_owner_id": "65",
        "repository_visibility": "private",
        "repository_id": "35",
        "run_id": "5407227840",
        "run_number": "10",
        "run_attempt": "1",
        "actor": "octocat",
        "actor_id": "12",
        "workflow": "deploy",
        "head_ref": "",
        "base_ref": "",
        "event_name": "push",
        "ref_type": "branch",
        "environment": environment,
        "job_workflow_ref": format!("{repo}/.github/workflows/deploy.yml@{git_ref}"),
        "runner_environment": "github-hosted",
        "iss": issuer,
        "nbf": t - 5,
        "exp": t + 300,
        "iat": t
    })
}

/// Claims shaped exactly like a Kubernetes projected service-account token's.
pub fn kubernetes_claims(issuer: &str, namespace: &str, account: &str) -> Value {
    let t = now();
    json!({
        "aud": [AUDIENCE],
        "exp": t + 3600,
        "iat": t,
        "iss": issuer,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": {
            "namespace": namespace,
            "node": {"name": "worker-1", "uid": "4f9a6c7e-0000-4000-8000-000000000001"},
            "pod": {"name": "deployer-7d9c", "uid": "4f9a6c7e-0000-4000-8000-000000000002"},
            "serviceaccount": {"name": account, "uid": "4f9a6c7e-0000-4000-8000-000000000003"}
        },
        "nbf": t,
        "sub": format!("system:serviceaccount:{namespace}:{account}")
    })
}
