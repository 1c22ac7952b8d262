//! Mutual TLS (RFC 8705): `tls_client_auth` against a client CA,
//! `self_signed_tls_client_auth` against registered certificates,
//! certificate-bound tokens (`cnf.x5t#S256`) refused without their
//! certificate, and the certificate header of a trusted proxy. Real TLS
//! over loopback with certificates made here (rcgen), reqwest/rustls and
//! curl as clients.

use crate::helpers::*;
use serde_json::{Value, json};

/// A certificate and its key, as PEM.
pub struct Pem {
    pub cert: String,
    pub key: String,
    pub der: Vec<u8>,
}

impl Pem {
    fn of(cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> Self {
        Self {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// RFC 8705 §3.1 `x5t#S256`.
    pub fn thumbprint(&self) -> String {
        appauth_verify::mtls::thumbprint(&self.der)
    }

    /// An HTTPS client presenting this certificate, trusting `server_ca`.
    pub fn client(&self, server_ca: &str) -> reqwest::Client {
        let identity = reqwest::Identity::from_pem(format!("{}{}", self.cert, self.key).as_bytes()).unwrap();
        tls_client(server_ca).identity(identity).build().unwrap()
    }
}

fn tls_client(server_ca: &str) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(server_ca.as_bytes()).unwrap())
}

/// A client CA and the certificates it issues.
pub struct ClientCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pub pem: String,
}

impl ClientCa {
    pub fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Self { params, key, pem }
    }

    /// A client certificate with subject `CN=cn, O=Acme` and `sans`.
    pub fn issue(&self, cn: &str, sans: &[rcgen::SanType]) -> Pem {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "Acme");
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        params.subject_alt_names = sans.to_vec();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        Pem::of(&params.signed_by(&key, &issuer).unwrap(), &key)
    }
}

/// A self-signed client certificate with subject `CN=cn, O=Acme`.
pub fn self_signed(cn: &str) -> Pem {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "Acme");
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    let key = rcgen::KeyPair::generate().unwrap();
    Pem::of(&params.self_signed(&key).unwrap(), &key)
}

/// An HTTPS appauth that asks for client certificates, trusting `ca` for
/// `tls_client_auth` and accepting registered self-signed ones.
pub struct MtlsServer {
    pub app: TestApp,
    pub server_ca: String,
    pub ca: ClientCa,
}

impl MtlsServer {
    pub async fn start(extra: &[String]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let ca = ClientCa::new("appauth test client CA");
        let path = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p.display().to_string()
        };
        let mut settings = vec![
            format!("server.tls_cert={}", path("server.pem", &server.cert.pem())),
            format!(
                "server.tls_key={}",
                path("server.key", &server.signing_key.serialize_pem())
            ),
            format!("server.client_ca_file={}", path("client-ca.pem", &ca.pem)),
            "server.self_signed_client_certs=true".to_string(),
        ];
        settings.extend_from_slice(extra);
        let mut app = spawn_in(dir, &settings).await;
        let server_ca = server.cert.pem();
        app.client = tls_client(&server_ca).build().unwrap();
        Self { app, server_ca, ca }
    }

    /// Creates an application with `tlsClientAuth` (and more members);
    /// returns its client ID and id.
    pub async fn app_with(&self, name: &str, members: Value) -> (String, String) {
        let api = self.app.api().await;
        let mut body = json!({"name": name});
        body.as_object_mut()
            .unwrap()
            .extend(members.as_object().unwrap().clone());
        let resp = api.post("/api/v1/apps", body).await;
        let status = resp.status();
        let created: Value = resp.json().await.unwrap();
        assert_eq!(status, 201, "{created}");
        (
            created["clientId"].as_str().unwrap().to_owned(),
            created["id"].as_str().unwrap().to_owned(),
        )
    }

    /// `POST /oauth/token` with `client_id` only, over `client`.
    pub async fn token_request(&self, client: &reqwest::Client, client_id: &str) -> reqwest::Response {
        client
            .post(self.app.url("/oauth/token"))
            .form(&[("grant_type", "client_credentials"), ("client_id", client_id)])
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_certificate_from_the_client_ca_with_the_registered_subject_gets_a_token_bound_to_it() {
    let s = MtlsServer::start(&[]).await;
    let (by_dn, _) = s
        .app_with(
            "ci-runner",
            json!({"tlsClientAuth": {"subjectDn": "CN=ci-runner,O=Acme"}}),
        )
        .await;
    let spiffe = "spiffe://acme.example/ns/ci/sa/runner";
    let (by_uri, _) = s.app_with("pod", json!({"tlsClientAuth": {"sanUri": spiffe}})).await;
    let cert =
        s.ca.issue("ci-runner", &[rcgen::SanType::URI(spiffe.try_into().unwrap())]);
    let client = cert.client(&s.server_ca);
    for client_id in [&by_dn, &by_uri] {
        let resp = s.token_request(&client, client_id).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer", "RFC 8705 tokens stay Bearer tokens");
        let claims = claims_of(body["access_token"].as_str().unwrap());
        assert_eq!(claims["client_id"], client_id.as_str());
        assert_eq!(claims["cnf"]["x5t#S256"], cert.thumbprint(), "bound to the certificate");
        // Introspection, by the same client over the same connection, shows the binding.
        let resp = client
            .post(s.app.url("/oauth/introspect"))
            .form(&[
                ("token", body["access_token"].as_str().unwrap()),
                ("client_id", client_id),
            ])
            .send()
            .await
            .unwrap();
        let seen: Value = resp.json().await.unwrap();
        assert_eq!(seen["active"], true, "{seen}");
        assert_eq!(seen["cnf"]["x5t#S256"], cert.thumbprint());
    }
    let meta: Value = s
        .app
        .client
        .get(s.app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let methods = meta["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&json!("tls_client_auth")) && methods.contains(&json!("self_signed_tls_client_auth")));
    assert_eq!(meta["tls_client_certificate_bound_access_tokens"], true);
    assert_eq!(
        meta["mtls_endpoint_aliases"]["token_endpoint"],
        s.app.url("/oauth/token")
    );
}

#[tokio::test]
async fn a_certificate_that_is_not_the_registered_one_is_refused_with_401() {
    let s = MtlsServer::start(&[]).await;
    let (client_id, _) = s
        .app_with(
            "ci-runner",
            json!({"tlsClientAuth": {"subjectDn": "CN=ci-runner,O=Acme"}}),
        )
        .await;
    // The right CA, another subject.
    let other = s.ca.issue("ci-runner-2", &[]).client(&s.server_ca);
    let body = assert_oauth_error(s.token_request(&other, &client_id).await, 401, "invalid_client").await;
    // The same words for every failure: nothing about what is registered.
    assert_eq!(body["error_description"], "client authentication failed", "{body}");
    // The right subject, but nobody's CA: a self-signed look-alike.
    let forged = self_signed("ci-runner").client(&s.server_ca);
    let body = assert_oauth_error(s.token_request(&forged, &client_id).await, 401, "invalid_client").await;
    assert_eq!(body["error_description"], "client authentication failed", "{body}");
    // The right subject from another CA.
    let elsewhere = ClientCa::new("someone else's CA")
        .issue("ci-runner", &[])
        .client(&s.server_ca);
    assert_oauth_error(s.token_request(&elsewhere, &client_id).await, 401, "invalid_client").await;
    // No certificate at all: client_id alone is not authentication.
    assert_oauth_error(s.token_request(&s.app.client, &client_id).await, 401, "invalid_client").await;
    // A good certificate for an application that registered none, or that does not exist.
    let good = s.ca.issue("ci-runner", &[]).client(&s.server_ca);
    let plain = s.app.api().await.create_app("plain").await;
    assert_oauth_error(
        s.token_request(&good, plain["clientId"].as_str().unwrap()).await,
        401,
        "invalid_client",
    )
    .await;
    assert_oauth_error(s.token_request(&good, "no-such-client").await, 401, "invalid_client").await;
    assert_eq!(s.token_request(&good, &client_id).await.status(), 200);
}

#[tokio::test]
async fn a_registered_self_signed_certificate_authenticates_and_another_does_not() {
    let s = MtlsServer::start(&[]).await;
    let (mine, rotated) = (self_signed("script"), self_signed("script"));
    let (client_id, id) = s
        .app_with("script", json!({"tlsClientAuth": {"selfSigned": [mine.cert]}}))
        .await;
    let resp = s.token_request(&mine.client(&s.server_ca), &client_id).await;
    assert_eq!(resp.status(), 200);
    let token: Value = resp.json().await.unwrap();
    assert_eq!(
        claims_of(token["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        mine.thumbprint()
    );
    // Same subject, other key: not registered.
    let body = assert_oauth_error(
        s.token_request(&rotated.client(&s.server_ca), &client_id).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(body["error_description"], "client authentication failed", "{body}");
    // Rotation: register the new one by its thumbprint; the old one stops.
    let api = s.app.api().await;
    let resp = api
        .patch(
            &format!("/api/v1/apps/{id}"),
            json!({"tlsClientAuth": {"selfSigned": [rotated.thumbprint()]}}),
        )
        .await;
    let view: Value = resp.json().await.unwrap();
    assert_eq!(view["tlsClientAuth"], json!({"selfSigned": [rotated.thumbprint()]}));
    assert_eq!(
        s.token_request(&rotated.client(&s.server_ca), &client_id)
            .await
            .status(),
        200
    );
    assert_eq!(
        s.token_request(&mine.client(&s.server_ca), &client_id).await.status(),
        401
    );
    // The change is audited, naming the method and never a certificate.
    let audit: Value = api
        .get("/api/v1/audit?filterBy=action==app.mtls")
        .await
        .json()
        .await
        .unwrap();
    let summary = audit.to_string();
    assert!(summary.contains("self_signed_tls_client_auth"), "{summary}");
    assert!(!summary.contains("BEGIN CERTIFICATE"));
}

#[tokio::test]
async fn a_certificate_bound_token_is_refused_on_the_admin_api_without_its_certificate() {
    let s = MtlsServer::start(&[]).await;
    let api = s.app.api().await;
    let cert = self_signed("ops");
    let (client_id, id) = s
        .app_with("ops", json!({"tlsClientAuth": {"selfSigned": [cert.cert]}}))
        .await;
    let tenant = api.tenant_id().await;
    assert_eq!(api.grant(&id, "viewer", "tenant", &tenant).await.status(), 201);
    let with_cert = cert.client(&s.server_ca);
    let token: Value = s.token_request(&with_cert, &client_id).await.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    let list = |client: reqwest::Client| {
        let url = s.app.url("/api/v1/apps");
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    };
    assert_eq!(list(with_cert.clone()).await.status(), 200);
    // Copied to a machine without the certificate, or with another one.
    let resp = list(s.app.client.clone()).await;
    assert_api_error(resp, 401, "certificate-bound").await;
    let resp = list(self_signed("ops").client(&s.server_ca)).await;
    assert_api_error(resp, 401, "certificate-bound").await;
    // Bearer introspection by that token is the same admin check.
    let resp = s
        .app
        .client
        .post(s.app.url("/oauth/introspect"))
        .bearer_auth(token)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_oauth_error(resp, 401, "invalid_token").await;
}

#[tokio::test]
async fn an_application_with_certificate_bound_tokens_needs_a_certificate_even_with_its_secret() {
    let s = MtlsServer::start(&[]).await;
    let api = s.app.api().await;
    let resp = api
        .post(
            "/api/v1/apps",
            json!({"name": "bound", "certificateBoundAccessTokens": true}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["certificateBoundAccessTokens"], true);
    let (id, secret) = (
        created["clientId"].as_str().unwrap(),
        created["secret"].as_str().unwrap(),
    );
    let body = assert_oauth_error(s.app.token_request(id, secret, "").await, 400, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("certificate-bound"),
        "{body}"
    );
    // Any certificate the client holds binds the token; the secret authenticates.
    let cert = self_signed("anything");
    let resp = cert
        .client(&s.server_ca)
        .post(s.app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let token: Value = resp.json().await.unwrap();
    assert_eq!(
        claims_of(token["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        cert.thumbprint()
    );
    // An application without the policy that authenticates by secret over
    // mTLS keeps getting unbound tokens (nothing changes for it).
    let plain = api.create_app("plain").await;
    let resp = cert
        .client(&s.server_ca)
        .post(s.app.url("/oauth/token"))
        .basic_auth(plain["clientId"].as_str().unwrap(), plain["secret"].as_str())
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let token: Value = resp.json().await.unwrap();
    assert!(claims_of(token["access_token"].as_str().unwrap()).get("cnf").is_none());
}

#[tokio::test]
async fn curl_with_its_client_certificate_gets_a_bound_token() {
    let s = MtlsServer::start(&[]).await;
    let cert = s.ca.issue(
        "curl-client",
        &[rcgen::SanType::DnsName("ci.acme.example".try_into().unwrap())],
    );
    let (client_id, _) = s
        .app_with("curl-client", json!({"tlsClientAuth": {"sanDns": "ci.acme.example"}}))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let (crt, key, ca) = (
        write("c.pem", &cert.cert),
        write("c.key", &cert.key),
        write("ca.pem", &s.server_ca),
    );
    let mut curl = std::process::Command::new("curl");
    curl.args(["-sS", "--max-time", "20", "--fail-with-body", "--cacert"])
        .arg(&ca)
        .arg("--cert")
        .arg(&crt)
        .arg("--key")
        .arg(&key)
        .args(["-d", "grant_type=client_credentials", "-d"])
        .arg(format!("client_id={client_id}"))
        .arg(s.app.url("/oauth/token"));
    // Off the runtime: the server under test runs on it.
    let out = tokio::task::spawn_blocking(move || curl.output())
        .await
        .unwrap()
        .expect("curl is installed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
        cert.thumbprint()
    );
}

#[tokio::test]
async fn registering_a_client_certificate_needs_apps_keys_and_never_on_ones_own_application() {
    let s = MtlsServer::start(&[]).await;
    let api = s.app.api().await;
    let cert = self_signed("planted");
    let (me, token) = api.app_with_tenant_role("app-admin", "application-administrator").await;
    let weaker = Api { app: &s.app, token };
    let victim = api.create_app("victim").await;
    let planted = json!({"tlsClientAuth": {"selfSigned": [cert.cert]}});
    let resp = weaker
        .patch(
            &format!("/api/v1/apps/{}", victim["id"].as_str().unwrap()),
            planted.clone(),
        )
        .await;
    assert_api_error(resp, 403, "apps:keys").await;
    let resp = weaker
        .post(
            "/api/v1/apps",
            json!({"name": "sneaky", "tlsClientAuth": {"selfSigned": [cert.cert]}}),
        )
        .await;
    assert_api_error(resp, 403, "apps:keys").await;
    // A System administrator cannot plant a certificate on its own application.
    let (sa, sa_token) = api.app_with_tenant_role("sys-admin", "system-administrator").await;
    let sa_api = Api {
        app: &s.app,
        token: sa_token,
    };
    let resp = sa_api
        .patch(&format!("/api/v1/apps/{}", sa["id"].as_str().unwrap()), planted.clone())
        .await;
    assert_api_error(resp, 403, "own application").await;
    // Malformed registrations are 400s naming the member.
    for (bad, needle) in [
        (json!({"sanDns": "a", "sanUri": "b"}), "one member"),
        (json!({"subjectDn": "CN"}), "RFC 4514"),
        (
            json!({"selfSigned": ["-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"]}),
            "selfSigned[0]",
        ),
        (json!({"sanIp": "10.0.0"}), "sanIp"),
    ] {
        let resp = api
            .patch(
                &format!("/api/v1/apps/{}", me["id"].as_str().unwrap()),
                json!({"tlsClientAuth": bad}),
            )
            .await;
        assert_api_error(resp, 400, needle).await;
    }
    assert_eq!(
        api.patch(&format!("/api/v1/apps/{}", victim["id"].as_str().unwrap()), planted)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_server_without_a_client_ca_refuses_tls_client_auth_registrations() {
    let app = spawn_app().await;
    let api = app.api().await;
    let resp = api
        .post(
            "/api/v1/apps",
            json!({"name": "nope", "tlsClientAuth": {"sanDns": "ci.acme.example"}}),
        )
        .await;
    assert_api_error(resp, 400, "server.client_ca_file").await;
    let meta: Value = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(meta.get("mtls_endpoint_aliases").is_none());
    assert!(!meta.to_string().contains("tls_client_auth"));
}

#[tokio::test]
async fn behind_a_trusted_proxy_its_certificate_header_authenticates_and_from_anyone_else_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let ca = ClientCa::new("proxy-verified CA");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca.pem).unwrap();
    let app = spawn_in(
        dir,
        &[
            format!("server.client_ca_file={}", ca_path.display()),
            "server.client_cert_header=X-SSL-Client-Cert".into(),
            "server.trusted_proxies=127.0.0.2".into(),
        ],
    )
    .await;
    let api = app.api().await;
    let resp = api
        .post(
            "/api/v1/apps",
            json!({"name": "behind-lb", "tlsClientAuth": {"subjectDn": "CN=behind-lb,O=Acme"}}),
        )
        .await;
    let created: Value = resp.json().await.unwrap();
    let client_id = created["clientId"].as_str().unwrap();
    let cert = ca.issue("behind-lb", &[]);
    use base64::Engine;
    let haproxy = base64::engine::general_purpose::STANDARD.encode(&cert.der);
    let nginx: String =
        percent_encoding::utf8_percent_encode(&cert.cert, percent_encoding::NON_ALPHANUMERIC).to_string();
    let rfc9440 = format!(":{haproxy}:");
    let from = |ip: &str| {
        reqwest::Client::builder()
            .no_proxy()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let url = format!("http://127.0.0.1:{}/oauth/token", app.port);
    let ask = |client: reqwest::Client, header: String| {
        let url = url.clone();
        async move {
            client
                .post(url)
                .header("X-SSL-Client-Cert", header)
                .form(&[("grant_type", "client_credentials"), ("client_id", client_id)])
                .send()
                .await
                .unwrap()
        }
    };
    for header in [haproxy.clone(), nginx, rfc9440] {
        let resp = ask(from("127.0.0.2"), header).await;
        assert_eq!(resp.status(), 200);
        let token: Value = resp.json().await.unwrap();
        assert_eq!(
            claims_of(token["access_token"].as_str().unwrap())["cnf"]["x5t#S256"],
            cert.thumbprint()
        );
    }
    // The same header from a client directly: ignored, so no certificate.
    assert_oauth_error(ask(from("127.0.0.1"), haproxy).await, 401, "invalid_client").await;
}

#[tokio::test]
async fn the_verifier_accepts_a_certificate_bound_token_only_with_its_certificate() {
    use appauth_verify::{ClientCertificate, Verified, Verifier, VerifierConfig};
    use tower::ServiceExt;
    let s = MtlsServer::start(&[]).await;
    let cert = self_signed("caller");
    let (client_id, _) = s
        .app_with("caller", json!({"tlsClientAuth": {"selfSigned": [cert.cert]}}))
        .await;
    let token: Value = s
        .token_request(&cert.client(&s.server_ca), &client_id)
        .await
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let mut cfg = VerifierConfig::new(&s.app.base, "urn:appauth:api");
    cfg.issuer_ca_pem = Some(s.server_ca.clone());
    let verifier = Verifier::discover(cfg).await.unwrap();
    async fn who(Verified(claims): Verified) -> String {
        claims.client_id
    }
    let router = axum::Router::new()
        .route("/who", axum::routing::get(who))
        .with_state(verifier);
    // What the resource server's TLS layer puts in the request: the
    // certificate of the connection, or none.
    let call = |presented: Option<Vec<u8>>| {
        let mut req = axum::http::Request::get("/who")
            .header("Authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap();
        if let Some(der) = presented {
            req.extensions_mut().insert(ClientCertificate(der));
        }
        router.clone().oneshot(req)
    };
    let resp = call(Some(cert.der.clone())).await.unwrap();
    assert_eq!(resp.status(), 200);
    for presented in [None, Some(self_signed("caller").der)] {
        let resp = call(presented).await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
    }
}

#[tokio::test]
async fn a_separate_admin_listener_ignores_the_proxy_certificate_header_unless_told_to_read_it() {
    // A proxy in front of the admin plane that does not strip the header
    // (the review's finding on deploy/haproxy.cfg) must not let a forged
    // header, certificates being public, authenticate as an mTLS client.
    for on_admin in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let ca = ClientCa::new("proxy-verified CA");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, &ca.pem).unwrap();
        let settings = [
            format!("server.client_ca_file={}", ca_path.display()),
            "server.client_cert_header=X-SSL-Client-Cert".into(),
            "server.trusted_proxies=127.0.0.2".into(),
            format!("server.client_cert_header_on_admin={on_admin}"),
        ];
        let settings: Vec<&str> = settings.iter().map(String::as_str).collect();
        let (public, admin) = crate::planes::spawn_split(&settings).await;
        let resp = admin
            .api()
            .await
            .post(
                "/api/v1/apps",
                json!({"name": "behind-lb", "tlsClientAuth": {"subjectDn": "CN=lb,O=Acme"}}),
            )
            .await;
        assert_eq!(resp.status(), 201);
        let created: Value = resp.json().await.unwrap();
        let client_id = created["clientId"].as_str().unwrap().to_owned();
        use base64::Engine;
        let header = base64::engine::general_purpose::STANDARD.encode(ca.issue("lb", &[]).der);
        let proxy = reqwest::Client::builder()
            .no_proxy()
            .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap();
        let ask = |base: String| {
            let (proxy, header, client_id) = (proxy.clone(), header.clone(), client_id.clone());
            async move {
                proxy
                    .post(format!("{base}/oauth/token"))
                    .header("X-SSL-Client-Cert", header)
                    .form(&[("grant_type", "client_credentials"), ("client_id", client_id.as_str())])
                    .send()
                    .await
                    .unwrap()
            }
        };
        let public_url = format!("http://127.0.0.1:{}", public.port);
        assert_eq!(ask(public_url).await.status(), 200, "the public listener reads it");
        let through_admin = ask(admin.base.clone()).await;
        if on_admin {
            assert_eq!(through_admin.status(), 200, "told to read it on the admin listener");
        } else {
            assert_oauth_error(through_admin, 401, "invalid_client").await;
        }
        public.stop().await;
    }
}
