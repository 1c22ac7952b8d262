//! The web console in a real browser (Debian chromium + chromedriver driven
//! by fantoccini). Screenshots of each main state go to
//! target/console-screenshots/.

use crate::helpers::*;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// One browser at a time: two Chromiums on two cores make timings flaky.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Browser {
    client: Client,
    driver: Child,
    downloads: PathBuf,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Killing chromedriver alone leaves its Chromium running: end the
        // whole process group it leads (chromedriver, Chromium and its
        // helpers), pass or fail, whether or not the session was closed.
        let group = rustix::process::Pid::from_child(&self.driver);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn screenshots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn browser() -> Browser {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver_bin = std::env::var("TEST_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
    let driver = Command::new(&driver_bin)
        .arg(format!("--port={port}"))
        // A process group of its own, so Drop can stop everything it starts.
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("the console tests need chromedriver ({driver_bin}): {e}. Install chromium and chromium-driver (apt-get install -y chromium chromium-driver) or run ./scripts/test.sh")
        });
    let profile = tempfile::tempdir().unwrap();
    let downloads = profile.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let chromium = std::env::var("TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let caps = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1440,900", format!("--user-data-dir={}", profile.path().join("chrome").display())],
            "prefs": {"download.default_directory": downloads.to_str().unwrap(), "download.prompt_for_download": false}
        }
    });
    let caps = caps.as_object().unwrap().clone();
    let url = format!("http://127.0.0.1:{port}");
    let mut last = None;
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => {
                return Browser {
                    client,
                    driver,
                    downloads,
                    _profile: profile,
                };
            }
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not start a browser session: {last:?}");
}

impl Browser {
    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(screenshots_dir().join(format!("{name}.png")), png).unwrap();
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
    }

    async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Polls `script` (which returns a value) until it equals `want`.
    async fn wait_js(&self, script: &str, want: Value) {
        let mut got = Value::Null;
        for _ in 0..100 {
            got = self.js(script).await;
            if got == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{script} stayed {got}, wanted {want}");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    async fn sign_in(&self, app: &TestApp) {
        self.client.goto(&app.url("/console")).await.unwrap();
        self.type_into("#signin-id", &app.admin_id).await;
        self.type_into("#signin-secret", &app.admin_secret).await;
        self.click("#signin-submit").await;
        self.wait_js("return document.getElementById('apps').hidden", json!(false))
            .await;
    }

    /// The first CSV file to land in the download folder, as text.
    async fn downloaded_csv(&self) -> String {
        for _ in 0..100 {
            if let Some(entry) = std::fs::read_dir(&self.downloads)
                .unwrap()
                .filter_map(Result::ok)
                .find(|e| e.path().extension().is_some_and(|x| x == "csv"))
            {
                return std::fs::read_to_string(entry.path()).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no CSV was downloaded");
    }

    async fn row_names(&self) -> Value {
        self.js("return [...document.querySelectorAll('#apps-body tr td:first-child')].map(td => td.firstChild.textContent)").await
    }

    async fn select_row(&self, name: &str) {
        let script = format!(
            "const tr = [...document.querySelectorAll('#apps-body tr')].find(r => r.firstChild.firstChild.textContent === {name:?}); if (tr.getAttribute('aria-selected') !== 'true') tr.click(); return tr.getAttribute('aria-selected')"
        );
        assert_eq!(self.js(&script).await, json!("true"));
    }
}

fn dialog_open(id: &str) -> String {
    format!("return document.getElementById('{id}').open")
}

#[tokio::test]
async fn console_signs_in_creates_an_app_whose_secret_works_and_manages_rules_secrets_and_deletion() {
    let _one = BROWSER.lock().await;
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    api.create_scope("cluster", "Cluster: A", &tenant).await;
    let b = browser().await;

    b.client.goto(&app.url("/console")).await.unwrap();
    b.find("#signin-id").await;
    b.shot("01-sign-in").await;
    b.type_into("#signin-id", &app.admin_id).await;
    b.type_into("#signin-secret", "aas_wrong").await;
    b.click("#signin-submit").await;
    b.wait_js("return document.getElementById('signin-error').hidden", json!(false))
        .await;
    assert!(
        b.js("return document.getElementById('signin-error').textContent")
            .await
            .as_str()
            .unwrap()
            .contains("client authentication failed")
    );
    b.sign_in(&app).await;
    b.wait_js("return document.querySelectorAll('#apps-body tr').length", json!(1))
        .await;
    b.shot("02-applications").await;

    // + NEW APPLICATION with inline validation.
    b.click("#new-app").await;
    b.type_into("#new-name", "Bad Name").await;
    b.wait_js("return document.getElementById('new-error').hidden", json!(false))
        .await;
    assert_eq!(
        b.js("return document.getElementById('new-create').disabled").await,
        json!(true)
    );
    b.shot("03-new-application-invalid").await;
    b.type_into("#new-name", "ci-pipeline-prod").await;
    b.wait_js("return document.getElementById('new-create').disabled", json!(false))
        .await;
    b.click("#new-create").await;
    b.wait_js(&dialog_open("secret-dialog"), json!(true)).await;
    let client_id = b
        .js("return document.getElementById('secret-client-id').value")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    let secret = b
        .js("return document.getElementById('secret-value').value")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        b.js("return document.querySelector('#secret-dialog .warning').textContent")
            .await
            .as_str()
            .unwrap()
            .contains("cannot be recovered")
    );
    b.shot("04-client-secret-shown-once").await;
    app.token_for(&client_id, &secret).await;
    b.click("#secret-done").await;
    b.wait_js("return document.querySelectorAll('#apps-body tr').length", json!(2))
        .await;
    let storage = b
        .js("return JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
        .await;
    assert!(
        !storage.as_str().unwrap().contains(&secret[4..]),
        "no secret in browser storage"
    );

    // ACCESS RULES: add, delete, add again.
    b.select_row("ci-pipeline-prod").await;
    b.click("#act-rules").await;
    b.wait_js(&dialog_open("rules-dialog"), json!(true)).await;
    b.wait_js("return document.getElementById('rules-empty').hidden", json!(false))
        .await;
    b.click("#rule-add").await;
    b.find("#rule-role")
        .await
        .select_by_value("l1-researcher")
        .await
        .unwrap();
    b.js("const s = document.getElementById('rule-scope'); s.value = [...s.options].find(o => o.text.includes('Cluster: A')).value; return s.value").await;
    b.click("#rule-save").await;
    b.wait_js("return document.querySelectorAll('#rules-body tr').length", json!(1))
        .await;
    b.shot("05-access-rules").await;
    let rules: Value = api
        .get("/api/v1/authorization/access-rules?filterBy=roleId%3D%3Dl1-researcher")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rules["totalRecords"], 1);
    // The trash icon asks first (over the rules dialog), in red.
    b.click("#rules-body button").await;
    b.wait_js(&dialog_open("confirm-dialog"), json!(true)).await;
    assert_eq!(
        b.js("return document.querySelectorAll('#rules-body tr').length").await,
        json!(1),
        "nothing is deleted before the confirmation"
    );
    assert_eq!(
        b.js("return document.getElementById('confirm-ok').className").await,
        json!("danger-fill")
    );
    b.click("#confirm-ok").await;
    b.wait_js("return document.querySelectorAll('#rules-body tr').length", json!(0))
        .await;
    b.wait_js(&dialog_open("rules-dialog"), json!(true)).await;
    let rules: Value = api
        .get("/api/v1/authorization/access-rules?filterBy=roleId%3D%3Dl1-researcher")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rules["totalRecords"], 0, "the trash icon deleted the rule");
    b.click("#rule-add").await;
    b.find("#rule-role")
        .await
        .select_by_value("l1-researcher")
        .await
        .unwrap();
    b.click("#rule-save").await;
    b.wait_js("return document.querySelectorAll('#rules-body tr').length", json!(1))
        .await;
    b.click("#rules-dialog [data-close]").await;
    b.wait_js(&dialog_open("rules-dialog"), json!(false)).await;
    b.wait_js(
        "return [...document.querySelectorAll('#apps-body td')].some(td => td.textContent.includes('L1 researcher'))",
        json!(true),
    )
    .await;

    // REGENERATE CLIENT SECRET.
    b.select_row("ci-pipeline-prod").await;
    b.click("#act-regenerate").await;
    b.wait_js(&dialog_open("confirm-dialog"), json!(true)).await;
    assert!(
        b.js("return document.getElementById('confirm-text').textContent")
            .await
            .as_str()
            .unwrap()
            .contains("stops working")
    );
    b.shot("06-regenerate-confirmation").await;
    b.click("#confirm-ok").await;
    b.wait_js(
        "return document.getElementById('secret-title').textContent",
        json!("New client secret"),
    )
    .await;
    let new_secret = b
        .js("return document.getElementById('secret-value').value")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_secret, secret);
    assert_oauth_error(app.token_request(&client_id, &secret, "").await, 401, "invalid_client").await;
    app.token_for(&client_id, &new_secret).await;
    b.click("#secret-done").await;

    // DELETE.
    b.wait_js(&dialog_open("secret-dialog"), json!(false)).await;
    b.select_row("ci-pipeline-prod").await;
    b.click("#act-delete").await;
    b.wait_js(&dialog_open("confirm-dialog"), json!(true)).await;
    b.shot("07-delete-confirmation").await;
    b.click("#confirm-ok").await;
    b.wait_js("return document.querySelectorAll('#apps-body tr').length", json!(1))
        .await;
    let gone: Value = api
        .get("/api/v1/apps?filterBy=name%3D%3Dci-pipeline-prod")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(gone["totalRecords"], 0);
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn console_rotates_a_secret_with_an_overlap_and_registers_and_removes_public_keys() {
    let _one = BROWSER.lock().await;
    let app = spawn_app().await;
    let api = app.api().await;
    let created = api.create_app("rolling").await;
    let (client_id, old) = (
        created["clientId"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    let b = browser().await;
    b.sign_in(&app).await;
    b.wait_js(
        "return document.querySelectorAll('#apps-body tr').length > 1",
        json!(true),
    )
    .await;

    // REGENERATE with a one-day overlap: the confirmation says so and is not red.
    b.select_row("rolling").await;
    b.click("#act-regenerate").await;
    b.wait_js(&dialog_open("confirm-dialog"), json!(true)).await;
    assert_eq!(
        b.js("return document.getElementById('confirm-extra').hidden").await,
        json!(false)
    );
    b.find("#regen-grace").await.select_by_value("86400").await.unwrap();
    let text = b.js("return document.getElementById('confirm-text').textContent").await;
    assert!(text.as_str().unwrap().contains("keeps working for 1 day"), "{text}");
    assert_eq!(
        b.js("return document.getElementById('confirm-ok').className").await,
        json!("primary")
    );
    b.shot("07-regenerate-with-overlap").await;
    b.click("#confirm-ok").await;
    b.wait_js(
        "return document.getElementById('secret-title').textContent",
        json!("New client secret"),
    )
    .await;
    let new = b.js("return document.getElementById('secret-value').value").await;
    let new = new.as_str().unwrap().to_owned();
    b.click("#secret-done").await;
    app.token_for(&client_id, &old).await;
    app.token_for(&client_id, &new).await;

    // KEYS: both secrets described (never shown), then keys pasted as a JWK Set.
    b.select_row("rolling").await;
    b.click("#act-keys").await;
    b.wait_js(&dialog_open("keys-dialog"), json!(true)).await;
    let secrets = b
        .js("return [...document.querySelectorAll('#secrets-body tr')].map(tr => tr.lastChild.textContent === 'while current')")
        .await;
    assert_eq!(
        secrets,
        json!([true, false]),
        "the current secret, then the one that stops"
    );
    let page = b.js("return document.body.innerText").await;
    assert!(!page.as_str().unwrap().contains(&old[4..]) && !page.as_str().unwrap().contains(&new[4..]));
    assert_eq!(
        b.js("return document.getElementById('keys-empty').hidden").await,
        json!(false)
    );
    b.type_into("#keys-input", "{not json").await;
    b.click("#keys-save").await;
    b.wait_js(
        "return document.getElementById('keys-error').textContent.startsWith('Not JSON')",
        json!(true),
    )
    .await;
    let key = crate::private_key_jwt::ClientKey::new("console-key");
    b.type_into("#keys-input", &key.jwks().to_string()).await;
    b.click("#keys-save").await;
    b.wait_js(
        "return [...document.querySelectorAll('#keys-body td')].map(td => td.textContent)",
        json!(["console-key", "EC P-256", "ES256"]),
    )
    .await;
    b.shot("08-secrets-and-keys").await;
    let assertion = key.sign(
        json!({}),
        &crate::private_key_jwt::claims(&client_id, &app.url("/oauth/token")),
    );
    let resp = app
        .post_form(
            "/oauth/token",
            &format!("grant_type=client_credentials&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer&client_assertion={assertion}"),
            None,
        )
        .await;
    assert_eq!(resp.status(), 200, "the key registered in the console authenticates");
    // A server refusal is shown in the dialog: a private key is not accepted.
    let mut private = key.jwks();
    private["keys"][0]["d"] = json!("AAAA");
    b.type_into("#keys-input", &private.to_string()).await;
    b.click("#keys-save").await;
    b.wait_js("return document.getElementById('keys-error').hidden", json!(false))
        .await;
    let shown = b.js("return document.getElementById('keys-error').textContent").await;
    assert!(shown.as_str().unwrap().contains("private"), "{shown}");
    b.click("#keys-remove").await;
    b.wait_js("return document.getElementById('keys-empty').hidden", json!(false))
        .await;
    let stored: Value = api
        .get(&format!("/api/v1/apps/{}", created["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert!(stored.get("jwks").is_none(), "REMOVE KEYS removed them: {stored}");
}

#[tokio::test]
async fn console_filter_search_sort_and_columns_change_the_table_and_the_csv_matches_it() {
    let _one = BROWSER.lock().await;
    let app = spawn_app().await;
    let api = app.api().await;
    for n in ["alpha-build", "beta-deploy", "gamma-build", "delta-scan"] {
        api.create_app(n).await;
    }
    let b = browser().await;
    b.sign_in(&app).await;
    b.wait_js("return document.querySelectorAll('#apps-body tr').length", json!(5))
        .await;
    assert_eq!(
        b.row_names().await,
        json!(["admin", "alpha-build", "beta-deploy", "delta-scan", "gamma-build"])
    );

    // Sort: clicking the sorted header flips the order.
    b.click("th[data-field=name] button").await;
    b.wait_js(
        "return document.querySelector('th[data-field=name]').getAttribute('aria-sort')",
        json!("descending"),
    )
    .await;
    b.wait_js(
        "return [...document.querySelectorAll('#apps-body tr td:first-child')].map(td => td.firstChild.textContent)[0]",
        json!("gamma-build"),
    )
    .await;

    // Search.
    b.type_into("#search", "delta").await;
    b.wait_js("return document.querySelectorAll('#apps-body tr').length", json!(1))
        .await;
    assert_eq!(b.row_names().await, json!(["delta-scan"]));
    b.type_into("#search", "zzz-nothing").await;
    b.wait_js("return document.getElementById('empty').hidden", json!(false))
        .await;
    b.shot("08-empty-state").await;
    let search = b.find("#search").await;
    search.send_keys("\u{e009}a\u{e003}").await.unwrap();
    b.wait_js("return document.querySelectorAll('#apps-body tr').length", json!(5))
        .await;

    // ADD FILTER: name contains build.
    b.click("#add-filter").await;
    b.find("#filter-field").await.select_by_value("name").await.unwrap();
    b.find("#filter-op").await.select_by_value("=@").await.unwrap();
    b.type_into("#filter-value", "build").await;
    b.click("#filter-form button[type=submit]").await;
    b.wait_js("return document.querySelectorAll('#apps-body tr').length", json!(2))
        .await;
    assert_eq!(b.row_names().await, json!(["gamma-build", "alpha-build"]));
    b.shot("09-filtered-and-sorted").await;

    // COLUMNS: keep Application, Client ID, Created by.
    b.click("#columns-button").await;
    for field in ["accessRules", "lastLogin", "createdAt", "updatedAt"] {
        b.click(&format!("#columns-menu input[data-field={field}]")).await;
    }
    b.wait_js(
        "return [...document.querySelectorAll('#apps-head th')].map(th => th.textContent)",
        json!(["Application", "Client ID", "Created by"]),
    )
    .await;
    b.shot("10-column-picker").await;
    b.click("#columns-button").await;

    // MORE → Download as CSV: same rows, same order, same columns.
    let table = b
        .js("return [...document.querySelectorAll('#apps-body tr')].map(tr => [...tr.children].map(td => td.firstChild.textContent))")
        .await;
    b.click("#more-button").await;
    b.click("#download-csv").await;
    let csv = b.downloaded_csv().await;
    let rows = parse_csv(&csv);
    assert_eq!(rows[0], ["Application", "Client ID", "Created by"]);
    let csv_rows: Vec<Value> = rows[1..].iter().map(|r| json!(r)).collect();
    assert_eq!(json!(csv_rows), table, "the CSV matches the table");
    b.wait_js(
        "return document.getElementById('toast').textContent",
        json!("Downloaded 2 applications as CSV."),
    )
    .await;

    // The column choice is remembered across a reload.
    b.sign_in(&app).await;
    b.wait_js("return document.querySelectorAll('#apps-head th').length", json!(3))
        .await;
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn console_shows_a_hostile_scope_name_as_text_and_runs_nothing() {
    let _one = BROWSER.lock().await;
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let hostile = "<img src=x onerror=alert(1)><script>document.title='pwned'</script>";
    let scope = api.create_scope("cluster", hostile, &tenant).await;
    let created = api.create_app("xss-target").await;
    api.grant(
        created["id"].as_str().unwrap(),
        "viewer",
        "cluster",
        scope["id"].as_str().unwrap(),
    )
    .await;
    let b = browser().await;
    b.sign_in(&app).await;
    b.wait_js("return document.querySelectorAll('#apps-body tr').length", json!(2))
        .await;
    let cell = b
        .js("return [...document.querySelectorAll('#apps-body td.rules-cell')].map(td => td.textContent).join('|')")
        .await;
    assert!(cell.as_str().unwrap().contains(hostile), "{cell}");
    assert_eq!(
        b.js("return document.querySelectorAll('img, script:not([src])').length")
            .await,
        json!(0)
    );
    b.select_row("xss-target").await;
    b.click("#act-rules").await;
    b.wait_js(&dialog_open("rules-dialog"), json!(true)).await;
    b.wait_js("return document.querySelectorAll('#rules-body tr').length", json!(1))
        .await;
    assert!(
        b.js("return document.querySelector('#rules-body td:nth-child(2)').textContent")
            .await
            .as_str()
            .unwrap()
            .contains(hostile)
    );
    let option = "return [...document.getElementById('rule-scope').options].some(o => o.text.includes('<img src=x'))";
    assert_eq!(
        b.js(option).await,
        json!(true),
        "the scope picker shows the name as text"
    );
    b.shot("11-hostile-name-as-text").await;
    assert!(b.client.get_alert_text().await.is_err(), "no alert ran");
    assert_eq!(b.js("return document.title").await, json!("Applications · appauth"));
    assert_eq!(
        b.js("return document.querySelectorAll('img, script:not([src])').length")
            .await,
        json!(0)
    );
    // Everything the page loaded came from its own origin.
    let origins = b
        .js("return [...new Set(performance.getEntriesByType('resource').map(e => new URL(e.name).origin))]")
        .await;
    assert_eq!(origins, json!([app.base]));
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn console_asks_to_sign_in_again_when_the_token_expires() {
    let _one = BROWSER.lock().await;
    let app = spawn_app_with(&["issuer.token_ttl_seconds=5".to_string()]).await;
    let b = browser().await;
    b.sign_in(&app).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    b.click("th[data-field=clientId] button").await;
    b.wait_js("return document.getElementById('signin').hidden", json!(false))
        .await;
    assert!(
        b.js("return document.getElementById('signin-error').textContent")
            .await
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert_eq!(
        b.js("return document.getElementById('signin-id').value").await,
        json!(app.admin_id)
    );
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn console_assets_are_embedded_and_served_with_a_strict_policy() {
    let app = spawn_app().await;
    for path in ["/console", "/console/app.js", "/console/app.css"] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'")
                && csp.contains("default-src 'none'")
                && csp.contains("frame-ancestors 'none'")
        );
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
    }
    let icon = app.client.get(app.url("/favicon.ico")).send().await.unwrap();
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/x-icon");
    assert_eq!(&icon.bytes().await.unwrap()[..4], &[0, 0, 1, 0], "an ICO file");
    let html = app.get_text("/console").await;
    assert!(!html.contains("<script>"), "no inline script");
    assert!(
        !html
            .split(|c: char| c.is_whitespace() || c == '<')
            .any(|w| w.starts_with("on") && w.contains('=')),
        "no inline event handlers"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external origin referenced"
    );
}

#[tokio::test]
async fn console_audit_log_page_filters_searches_sorts_pages_and_downloads() {
    let _one = BROWSER.lock().await;
    let app = spawn_app().await;
    let api = app.api().await;
    for i in 0..27 {
        api.create_app(&format!("audited-{i:02}")).await;
    }
    // A refused request, to find in the log.
    let (_, token) = api.app_with_tenant_role("weak-reader", "l1-researcher").await;
    // Records are ordered by their millisecond; in the same one as the rule
    // grant, the order of the two would be a coin toss.
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(Api { app: &app, token }.get("/api/v1/apps").await.status(), 403);
    let b = browser().await;
    b.sign_in(&app).await;
    b.click("#nav-audit").await;
    b.wait_js("return document.getElementById('audit').hidden", json!(false))
        .await;
    b.wait_js(
        "return document.getElementById('audit-page-info').textContent.endsWith('of 31')",
        json!(true),
    )
    .await;
    assert_eq!(b.js("return document.getElementById('apps').hidden").await, json!(true));
    assert_eq!(
        b.js("return document.getElementById('nav-audit').getAttribute('aria-current')")
            .await,
        json!("page")
    );
    // Newest first: the refused read is on top.
    let first_action = "return document.querySelector('#audit-body tr').children[2].textContent";
    assert_eq!(b.js(first_action).await, json!("request"));
    assert_eq!(
        b.js("return document.querySelector('#audit-body tr .outcome').textContent")
            .await,
        json!("refused")
    );
    b.shot("20-audit-log").await;

    // Paging: 25 per page, then the rest.
    b.js("const s = document.getElementById('audit-page-size'); s.value = '25'; s.dispatchEvent(new Event('change')); return 0").await;
    b.wait_js("return document.querySelectorAll('#audit-body tr').length", json!(25))
        .await;
    b.click("#audit-next").await;
    b.wait_js("return document.querySelectorAll('#audit-body tr').length", json!(6))
        .await;
    assert_eq!(
        b.js("return document.getElementById('audit-next').disabled").await,
        json!(true)
    );

    // Sort by time ascending: the store's initialisation comes first.
    b.click("#audit-head th[data-field='at'] button").await;
    b.wait_js(first_action, json!("store.initialize")).await;

    // Search.
    b.type_into("#audit-search", "audited-07").await;
    b.wait_js("return document.querySelectorAll('#audit-body tr').length", json!(1))
        .await;
    b.type_into("#audit-search", "").await;
    b.js("const s = document.getElementById('audit-search'); s.dispatchEvent(new Event('input')); return 0")
        .await;
    // The cleared search's answer must be in before the next request: a
    // late success would otherwise replace the error banner checked below.
    b.wait_js(
        "return document.querySelectorAll('#audit-body tr').length > 1",
        json!(true),
    )
    .await;

    // A time filter without a time, or one the server refuses, leaves no
    // chip and says why next to the form; a good one filters.
    b.click("#audit-add-filter").await;
    b.find("#audit-filter-field").await.select_by_value("at").await.unwrap();
    assert_eq!(
        b.js("return [document.getElementById('audit-filter-value').type, [...document.getElementById('audit-filter-op').options].map(o => o.text)]").await,
        json!(["datetime-local", ["on or after", "on or before"]]),
        "a time column gets a date-time picker and time operators"
    );
    b.click("#audit-filter-form button[type=submit]").await;
    b.wait_js(
        "return document.getElementById('audit-filter-error').textContent",
        json!("Pick a date and time."),
    )
    .await;
    assert_eq!(
        b.js("return document.querySelectorAll('#audit-filters .chip').length")
            .await,
        json!(0)
    );
    b.js("document.getElementById('audit-filter-field').value = 'action'; document.getElementById('audit-filter-field').dispatchEvent(new Event('change')); document.getElementById('audit-filter-op').value = '=='; return 0").await;
    b.type_into("#audit-filter-value", "request").await;
    b.click("#audit-filter-form button[type=submit]").await;
    b.wait_js(
        "return document.querySelectorAll('#audit-filters .chip').length",
        json!(1),
    )
    .await;
    b.wait_js(
        "return document.getElementById('audit-page-info').textContent.endsWith('of 1')",
        json!(true),
    )
    .await;
    b.shot("21-audit-log-filtered").await;

    // CSV: the filtered records.
    b.click("#audit-csv").await;
    let csv = b.downloaded_csv().await;
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("Time,Actor,Actor client ID,Action"));
    assert!(
        lines[1].contains(",request,") && lines[1].contains("weak-reader"),
        "{csv}"
    );

    // Back to the applications.
    b.click("#nav-apps").await;
    b.wait_js("return document.getElementById('apps').hidden", json!(false))
        .await;
}

impl Browser {
    /// Makes the page's viewport exactly `width` × `height` CSS pixels.
    async fn viewport(&self, width: u32, height: u32) {
        let (mut w, mut h) = (width, height);
        for _ in 0..3 {
            self.client.set_window_size(w, h).await.unwrap();
            let inner = self.js("return [window.innerWidth, window.innerHeight]").await;
            let (iw, ih) = (inner[0].as_u64().unwrap() as u32, inner[1].as_u64().unwrap() as u32);
            if (iw, ih) == (width, height) {
                return;
            }
            w = w + width - iw.min(width + w);
            h = h + height - ih.min(height + h);
        }
        panic!("could not make the viewport {width}x{height}");
    }

    /// Sends keys to whatever has focus (Escape, Tab: WebDriver key codes).
    async fn press(&self, keys: &str) {
        self.client
            .active_element()
            .await
            .unwrap()
            .send_keys(keys)
            .await
            .unwrap();
    }

    async fn active_id(&self) -> Value {
        self.js("return document.activeElement && document.activeElement.id")
            .await
    }

    /// The application table as text, cell by cell, as the CSV should hold
    /// it: the name without its status badge, and a time as the exact
    /// instant its `<time datetime>` carries (the cell shows it in local
    /// format), empty when never set.
    async fn table_cells(&self) -> Value {
        self.js(
            "return [...document.querySelectorAll('#apps-body tr')].map(tr => [...tr.children].map(td => {
                if (td.classList.contains('time')) { const t = td.querySelector('time'); return t ? t.getAttribute('datetime') : ''; }
                return td.firstChild ? td.firstChild.textContent : '';
             }))",
        )
        .await
    }
}

const ESCAPE: &str = "\u{e00c}";
const TAB: &str = "\u{e004}";

/// Each defect an operator found walking the seed's procedures (issue 15),
/// as an assertion, at 1440×900.
#[tokio::test]
async fn console_walkthrough_defects_stay_fixed() {
    let _one = BROWSER.lock().await;
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let scope = api.create_scope("cluster", "Cluster: A", &tenant).await;
    for i in 0..60 {
        api.create_app(&format!("a-{i:02}")).await;
    }
    let b = browser().await;
    b.sign_in(&app).await;
    b.wait_js(
        "return document.getElementById('page-info').textContent",
        json!("1–50 of 61"),
    )
    .await;

    // 10. The top bar names the signed-in application; its ID is on hover.
    b.wait_js("return document.getElementById('whoami').textContent", json!("admin"))
        .await;
    assert!(
        b.js("return document.getElementById('whoami').title")
            .await
            .as_str()
            .unwrap()
            .contains(&app.admin_id)
    );

    // 11. With no row selected, a visible hint says what the greyed actions need.
    assert_eq!(
        b.js("return document.getElementById('select-hint').hidden").await,
        json!(false)
    );
    b.select_row("a-00").await;
    assert_eq!(
        b.js("return document.getElementById('select-hint').hidden").await,
        json!(true)
    );
    b.select_row("a-00").await;
    b.js("document.querySelector('#apps-body tr').click(); return 0").await;

    // 5. A disabled pager button looks disabled; there is a pager above the
    // table too; after "next" the reader is at the top of the new page.
    let colour = |id: &str| {
        format!("const s = getComputedStyle(document.getElementById('{id}')); return s.color + ' ' + s.opacity")
    };
    assert_eq!(
        b.js("return document.getElementById('prev-page').disabled").await,
        json!(true)
    );
    assert_ne!(
        b.js(&colour("prev-page")).await,
        b.js(&colour("next-page")).await,
        "disabled ‹ looks different from enabled ›"
    );
    assert_eq!(
        b.js("return document.getElementById('page-info-top').textContent")
            .await,
        json!("1–50 of 61")
    );
    b.js("window.scrollTo(0, document.body.scrollHeight); return 0").await;
    b.click("#next-page").await;
    b.wait_js(
        "return document.getElementById('page-info').textContent",
        json!("51–61 of 61"),
    )
    .await;
    b.wait_js("const r = document.getElementById('apps-table').getBoundingClientRect(); return r.top >= 0 && r.top < window.innerHeight", json!(true))
        .await;
    b.click("#prev-page-top").await;
    b.wait_js(
        "return document.getElementById('page-info-top').textContent",
        json!("1–50 of 61"),
    )
    .await;

    // 12. The name rules in the hint, and a too-short name says so.
    b.click("#new-app").await;
    let hint = b.js("return document.getElementById('new-hint').textContent").await;
    assert!(
        hint.as_str().unwrap().contains("2 to 63") && hint.as_str().unwrap().contains("ends with a letter or digit"),
        "{hint}"
    );
    b.type_into("#new-name", "a").await;
    b.wait_js(
        "return document.getElementById('new-error').textContent",
        json!("Too short: at least 2 characters."),
    )
    .await;
    // 7. Tab past CREATE stays in the dialog.
    b.type_into("#new-name", "m-new").await;
    b.wait_js("return document.getElementById('new-create').disabled", json!(false))
        .await;
    b.js("document.getElementById('new-create').focus(); return 0").await;
    b.press(TAB).await;
    assert_eq!(
        b.js("return document.getElementById('new-dialog').contains(document.activeElement)")
            .await,
        json!(true),
        "focus stays inside the open dialog"
    );
    b.click("#new-create").await;
    b.wait_js(&dialog_open("secret-dialog"), json!(true)).await;

    // 1. The whole secret is visible: no scrolling inside its field.
    let fits = "const f = document.getElementById('secret-value'); return f.value.length > 40 && f.scrollWidth <= f.clientWidth && f.scrollHeight <= f.clientHeight";
    assert_eq!(b.js(fits).await, json!(true), "the secret fits its field");
    // 12. Labels as the seed has them.
    assert_eq!(
        b.js("return document.getElementById('secret-value-label').textContent")
            .await,
        json!("Client secret")
    );
    // 2. COPY, then a new secret dialog soon after: its buttons say COPY.
    b.click("#secret-dialog [data-copy=secret-value]").await;
    b.js("window.copiedAt = performance.now(); return 0").await;
    b.wait_js(
        "return document.querySelector('#secret-dialog [data-copy=secret-value]').textContent !== 'COPY'",
        json!(true),
    )
    .await;
    b.click("#secret-done").await;

    // 11. The new application's page is shown, its row selected, highlighted
    // and in view (sorted by name it is the 62nd of 62).
    b.wait_js(
        "return document.getElementById('page-info').textContent",
        json!("51–62 of 62"),
    )
    .await;
    let row = "const tr = [...document.querySelectorAll('#apps-body tr')].find(r => r.firstChild.firstChild.textContent === 'm-new'); const r = tr.getBoundingClientRect(); return [tr.getAttribute('aria-selected'), tr.classList.contains('fresh'), r.top >= 0 && r.bottom <= window.innerHeight]";
    assert_eq!(b.js(row).await, json!(["true", true, true]));
    // 4. Success is a toast (it fades: checked below).
    b.wait_js(
        "return document.getElementById('toast').textContent",
        json!("Created m-new."),
    )
    .await;
    assert_eq!(
        b.js("return document.getElementById('toast').hidden").await,
        json!(false)
    );

    // 2 (continued): regenerate at once; 3: its confirmation is red.
    b.click("#act-regenerate").await;
    b.wait_js(&dialog_open("confirm-dialog"), json!(true)).await;
    let bg = |css: &str| format!("return getComputedStyle(document.querySelector('{css}')).backgroundColor");
    assert_ne!(
        b.js(&bg("#confirm-ok")).await,
        b.js(&bg("#new-app")).await,
        "a dangerous confirmation is not the primary blue"
    );
    b.click("#confirm-ok").await;
    b.wait_js(
        "return document.getElementById('secret-title').textContent",
        json!("New client secret"),
    )
    .await;
    let elapsed = b
        .js("return performance.now() - window.copiedAt")
        .await
        .as_f64()
        .unwrap();
    assert!(
        elapsed < 2500.0,
        "the new dialog opened within the old COPIED timer ({elapsed} ms), so the check below means something"
    );
    assert_eq!(
        b.js("return [...document.querySelectorAll('#secret-dialog [data-copy]')].map(b => b.textContent)")
            .await,
        json!(["COPY", "COPY"])
    );
    assert_eq!(
        b.js("return document.getElementById('secret-value-label').textContent")
            .await,
        json!("New client secret")
    );
    assert_eq!(b.js(fits).await, json!(true));
    b.click("#secret-done").await;
    b.wait_js(&dialog_open("secret-dialog"), json!(false)).await;
    // 4. The toast went away by itself, and never moved the toolbar.
    b.wait_js("return document.getElementById('toast').hidden", json!(true))
        .await;
    assert_eq!(
        b.js("return getComputedStyle(document.getElementById('toast')).position")
            .await,
        json!("fixed")
    );

    // 3. DISABLE's confirmation is red too.
    b.select_row("m-new").await;
    b.click("#act-toggle").await;
    b.wait_js(&dialog_open("confirm-dialog"), json!(true)).await;
    assert_eq!(
        b.js("return document.getElementById('confirm-ok').className").await,
        json!("danger-fill")
    );
    b.click("#confirm-dialog [data-close]").await;

    // 4. An error banner can be dismissed, and clears once its cause is gone.
    let set_limit = |n: u32| {
        format!(
            "const s = document.getElementById('page-size'); if (![...s.options].some(o => o.value === '{n}')) s.append(new Option('{n}', '{n}')); s.value = '{n}'; s.dispatchEvent(new Event('change')); return 0"
        )
    };
    b.js(&set_limit(5000)).await;
    b.wait_js("return document.getElementById('banner').hidden", json!(false))
        .await;
    b.click("#banner [data-dismiss]").await;
    b.wait_js("return document.getElementById('banner').hidden", json!(true))
        .await;
    b.js(&set_limit(5000)).await;
    b.wait_js("return document.getElementById('banner').hidden", json!(false))
        .await;
    b.js(&set_limit(100)).await;
    b.wait_js("return document.getElementById('banner').hidden", json!(true))
        .await;

    // 6. Time columns: their own operators, a picker, a readable chip, applied.
    b.click("#add-filter").await;
    let ops = "return [...document.getElementById('filter-op').options].map(o => o.text)";
    assert!(
        !b.js(ops).await.as_array().unwrap().contains(&json!("on or after")),
        "no time operators on names"
    );
    b.find("#filter-field")
        .await
        .select_by_value("createdAt")
        .await
        .unwrap();
    assert_eq!(b.js(ops).await, json!(["on or after", "on or before"]));
    assert_eq!(
        b.js("return document.getElementById('filter-value').type").await,
        json!("datetime-local")
    );
    b.click("#filter-form button[type=submit]").await;
    b.wait_js(
        "return document.getElementById('filter-error').textContent",
        json!("Pick a date and time."),
    )
    .await;
    assert_eq!(
        b.js("return document.querySelectorAll('#filters .chip').length").await,
        json!(0),
        "no chip for a filter not applied"
    );
    b.js("const v = document.getElementById('filter-value'); v.value = '2020-01-01T00:00'; return v.value")
        .await;
    b.click("#filter-form button[type=submit]").await;
    b.wait_js("return document.querySelectorAll('#filters .chip').length", json!(1))
        .await;
    let chip = b
        .js("return document.querySelector('#filters .chip').firstChild.textContent")
        .await;
    assert!(
        chip.as_str().unwrap().starts_with("Creation time on or after ") && chip.as_str().unwrap().contains("2020"),
        "{chip}"
    );
    assert!(
        !chip.as_str().unwrap().contains('/') && !chip.as_str().unwrap().contains("RFC"),
        "{chip}"
    );
    b.wait_js(
        "return document.getElementById('page-info').textContent",
        json!("1–62 of 62"),
    )
    .await;
    b.click("#filters .chip button").await;

    // 7. Escape in COLUMNS closes it and gives focus back to its button.
    b.click("#columns-button").await;
    b.wait_js("return document.getElementById('columns-menu').hidden", json!(false))
        .await;
    b.press(ESCAPE).await;
    assert_eq!(
        b.js("return document.getElementById('columns-menu').hidden").await,
        json!(true)
    );
    assert_eq!(b.active_id().await, json!("columns-button"));
    assert_eq!(
        b.js("return document.getElementById('columns-button').getAttribute('aria-expanded')")
            .await,
        json!("false")
    );
    // A focused row has a clear focus ring (keyboard focus).
    b.press(TAB).await;
    b.js("document.querySelector('#apps-body tr').focus(); return 0").await;
    let ring = b.js("const td = document.activeElement.firstChild; const s = getComputedStyle(td); const sel = getComputedStyle(document.querySelector('#apps-body tr[aria-selected=true] td') || td); return [document.activeElement.tagName, s.borderTopStyle, parseFloat(s.borderTopWidth) >= 2, s.borderLeftStyle]").await;
    assert_eq!(
        ring,
        json!(["TR", "dashed", true, "dashed"]),
        "a focused row has a 3px ring on its cells"
    );

    // 13 + 10. Deleting one's own System administrator rule: confirmed, in
    // red, warned, refused with the reason; the rules name their creators.
    let admin_app: Value = api.get("/api/v1/apps?filterBy=name==admin").await.json().await.unwrap();
    let admin_id = admin_app["applications"][0]["id"].as_str().unwrap().to_owned();
    let m_new: Value = api.get("/api/v1/apps?filterBy=name==m-new").await.json().await.unwrap();
    api.grant(
        m_new["applications"][0]["id"].as_str().unwrap(),
        "l1-researcher",
        "cluster",
        scope["id"].as_str().unwrap(),
    )
    .await;
    b.js(&set_limit(100)).await;
    b.select_row("admin").await;
    b.click("#act-rules").await;
    b.wait_js(&dialog_open("rules-dialog"), json!(true)).await;
    b.wait_js("return document.querySelectorAll('#rules-body tr').length", json!(1))
        .await;
    assert_eq!(
        b.js("return document.querySelector('#rules-body td:nth-child(3)').textContent")
            .await,
        json!("system")
    );
    b.click("#rules-body button").await;
    b.wait_js(&dialog_open("confirm-dialog"), json!(true)).await;
    assert!(
        b.js("return document.getElementById('confirm-text').textContent")
            .await
            .as_str()
            .unwrap()
            .contains("signed in as")
    );
    b.click("#confirm-ok").await;
    b.wait_js("return document.getElementById('confirm-error').hidden", json!(false))
        .await;
    assert!(
        b.js("return document.getElementById('confirm-error').textContent")
            .await
            .as_str()
            .unwrap()
            .contains("Nothing was changed")
    );
    let rules: Value = api
        .get(&format!(
            "/api/v1/authorization/access-rules?filterBy=subjectId%3D%3D{admin_id}"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rules["totalRecords"], 1, "the administrator kept its rule");
    b.click("#confirm-dialog [data-close]").await;
    b.click("#rules-dialog [data-close]").await;
    b.wait_js(&dialog_open("rules-dialog"), json!(false)).await;

    // 8 + 10. Every visible cell of the table is in the CSV as shown, rules
    // and creator names included.
    b.type_into("#search", "m-new").await;
    b.wait_js("return document.querySelectorAll('#apps-body tr').length", json!(1))
        .await;
    b.wait_js(
        "return document.querySelector('#apps-body .rules-cell').textContent",
        json!("L1 researcher (Cluster: A)"),
    )
    .await;
    let cells = b.table_cells().await;
    assert_eq!(cells[0][4], json!("admin"), "Created by names the creator: {cells}");
    b.click("#more-button").await;
    b.click("#download-csv").await;
    let csv = b.downloaded_csv().await;
    let rows = parse_csv(&csv);
    assert_eq!(
        rows[0],
        [
            "Application",
            "Client ID",
            "Access rule(s)",
            "Last login",
            "Created by",
            "Creation time",
            "Last updated"
        ]
    );
    assert_eq!(json!(rows[1..]), cells, "the CSV holds what the table shows");
    b.client.clone().close().await.unwrap();
}

/// The page at 1440×900, 1280×720 and 390×844: nothing overflows the page,
/// no column is clipped at 1280, the toolbar keeps one line there, and at
/// phone width the top bar, dialogs and rule pickers stay usable. Every
/// state is saved to target/console-screenshots/ (`<size>-<state>.png`).
#[tokio::test]
async fn console_fits_every_size_and_saves_each_state() {
    let _one = BROWSER.lock().await;
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let scope = api.create_scope("cluster", "Cluster: A", &tenant).await;
    for i in 0..8 {
        let created = api.create_app(&format!("ci-pipeline-{i:02}-with-a-longer-name")).await;
        api.grant(
            created["id"].as_str().unwrap(),
            "l1-researcher",
            "cluster",
            scope["id"].as_str().unwrap(),
        )
        .await;
    }
    let b = browser().await;
    b.sign_in(&app).await;
    b.wait_js("return document.querySelectorAll('#apps-body tr').length", json!(9))
        .await;
    let no_page_overflow = "return document.documentElement.scrollWidth <= window.innerWidth";
    let within_viewport = |id: &str| {
        format!(
            "const r = document.getElementById('{id}').getBoundingClientRect(); return r.left >= 0 && r.top >= 0 && r.right <= window.innerWidth && r.bottom <= window.innerHeight"
        )
    };
    for (w, h) in [(1440, 900), (1280, 720), (390, 844)] {
        let size = format!("{w}x{h}");
        b.viewport(w, h).await;
        b.js("window.scrollTo(0, 0); return 0").await;
        b.shot(&format!("{size}-01-applications")).await;
        assert_eq!(
            b.js(no_page_overflow).await,
            json!(true),
            "{size}: the page scrolls sideways"
        );
        if w >= 1280 {
            assert_eq!(
                b.js("const t = document.getElementById('apps-wrap'); return t.scrollWidth <= t.clientWidth")
                    .await,
                json!(true),
                "{size}: the table is wider than its box (a column is clipped)"
            );
            assert_eq!(
                b.js("return document.getElementById('more-button').getBoundingClientRect().top === document.getElementById('new-app').getBoundingClientRect().top").await,
                json!(true),
                "{size}: the toolbar wraps"
            );
        } else {
            assert_eq!(
                b.js("const line = parseFloat(getComputedStyle(document.getElementById('signout')).lineHeight) || 20; return ['whoami', 'signout'].map(id => { const e = document.getElementById(id); const cs = getComputedStyle(e); return e.scrollWidth <= e.clientWidth + 1 && e.getBoundingClientRect().height - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom) < 1.6 * line; })").await,
                json!([true, true]),
                "{size}: the top bar's name and SIGN OUT stay on one line"
            );
            assert_eq!(
                b.js("const th = document.querySelector('#apps-head th'); return getComputedStyle(th).position")
                    .await,
                json!("sticky"),
                "{size}: the name column stays in view while the table scrolls"
            );
        }

        b.click("#add-filter").await;
        b.shot(&format!("{size}-02-filter-form")).await;
        assert_eq!(b.js(no_page_overflow).await, json!(true), "{size}: filter form");
        b.click("#add-filter").await;
        b.click("#columns-button").await;
        b.shot(&format!("{size}-03-columns-menu")).await;
        b.press(ESCAPE).await;

        b.click("#new-app").await;
        b.type_into("#new-name", "Bad").await;
        assert_eq!(
            b.js(&within_viewport("new-dialog")).await,
            json!(true),
            "{size}: new dialog"
        );
        b.shot(&format!("{size}-04-new-application-invalid")).await;
        b.type_into("#new-name", &format!("made-at-{w}")).await;
        b.wait_js("return document.getElementById('new-create').disabled", json!(false))
            .await;
        b.click("#new-create").await;
        b.wait_js(&dialog_open("secret-dialog"), json!(true)).await;
        assert_eq!(
            b.js("return ['secret-client-id', 'secret-value'].map(id => { const f = document.getElementById(id); return f.scrollWidth <= f.clientWidth && f.scrollHeight <= f.clientHeight; })").await,
            json!([true, true]),
            "{size}: the client ID and secret are fully visible"
        );
        assert_eq!(
            b.js(&within_viewport("secret-dialog")).await,
            json!(true),
            "{size}: secret dialog"
        );
        b.shot(&format!("{size}-05-secret-shown-once")).await;
        b.click("#secret-done").await;
        b.wait_js("return document.getElementById('toast').hidden", json!(false))
            .await;
        b.shot(&format!("{size}-06-created-highlighted")).await;

        b.select_row("ci-pipeline-00-with-a-longer-name").await;
        b.click("#act-rules").await;
        b.wait_js(&dialog_open("rules-dialog"), json!(true)).await;
        b.click("#rule-add").await;
        assert_eq!(
            b.js("return ['rule-role', 'rule-scope'].map(id => document.getElementById(id).getBoundingClientRect().width >= 150)").await,
            json!([true, true]),
            "{size}: the role and scope pickers are wide enough to use"
        );
        assert_eq!(
            b.js(&within_viewport("rules-dialog")).await,
            json!(true),
            "{size}: rules dialog"
        );
        b.shot(&format!("{size}-07-access-rules")).await;
        b.click("#rules-body button").await;
        b.wait_js(&dialog_open("confirm-dialog"), json!(true)).await;
        assert_eq!(
            b.js(&within_viewport("confirm-dialog")).await,
            json!(true),
            "{size}: confirm dialog"
        );
        b.shot(&format!("{size}-08-confirm-rule-deletion")).await;
        b.click("#confirm-dialog [data-close]").await;
        b.click("#rules-dialog [data-close]").await;
        b.wait_js(&dialog_open("rules-dialog"), json!(false)).await;

        b.click("#nav-audit").await;
        b.wait_js(
            "return document.querySelectorAll('#audit-body tr').length > 0",
            json!(true),
        )
        .await;
        assert_eq!(b.js(no_page_overflow).await, json!(true), "{size}: audit page");
        b.shot(&format!("{size}-09-audit-log")).await;
        b.click("#nav-apps").await;
        b.wait_js("return document.getElementById('apps').hidden", json!(false))
            .await;
    }
    b.client.clone().close().await.unwrap();
}

#[tokio::test]
async fn console_adds_and_removes_a_federated_credential_in_the_keys_dialog() {
    let _one = BROWSER.lock().await;
    let issuer = "https://token.actions.githubusercontent.com";
    let app = spawn_app_with(&[format!("federation.issuers=[{{issuer = \"{issuer}\"}}]")]).await;
    let api = app.api().await;
    let created = api.create_app("ci-deployer").await;
    let b = browser().await;
    b.sign_in(&app).await;
    b.wait_js(
        "return document.querySelectorAll('#apps-body tr').length > 1",
        json!(true),
    )
    .await;
    b.select_row("ci-deployer").await;
    b.click("#act-keys").await;
    b.wait_js(&dialog_open("keys-dialog"), json!(true)).await;
    assert_eq!(
        b.js("return [...document.querySelectorAll('#fed-issuer option')].map(o => o.value)")
            .await,
        json!([issuer]),
        "only the trusted issuers are offered"
    );
    // A pattern that would match almost anything: the server's reason is shown.
    b.type_into("#fed-subject", "*").await;
    b.click("#fed-add").await;
    b.wait_js("return document.getElementById('fed-error').hidden", json!(false))
        .await;
    let shown = b.js("return document.getElementById('fed-error').textContent").await;
    assert!(shown.as_str().unwrap().contains("besides *"), "{shown}");
    b.type_into("#fed-subject", "repo:acme/*:environment:prod").await;
    b.type_into("#fed-conditions", "ref=refs/heads/main").await;
    b.click("#fed-add").await;
    b.wait_js("return document.querySelectorAll('#fed-body tr').length", json!(1))
        .await;
    assert_eq!(
        b.js("return [...document.querySelectorAll('#fed-body td')].slice(0, 3).map(td => td.textContent)")
            .await,
        json!([issuer, "repo:acme/*:environment:prod", "ref=refs/heads/main"])
    );
    b.shot("09-federated-credential").await;
    let stored: Value = api
        .get(&format!("/api/v1/apps/{}", created["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        stored["federatedCredentials"][0]["conditions"]["ref"],
        "refs/heads/main"
    );
    b.click("#fed-body button").await;
    b.wait_js("return document.querySelectorAll('#fed-body tr').length", json!(0))
        .await;
    assert_eq!(
        b.js("return document.getElementById('fed-empty').hidden").await,
        json!(false)
    );
}
