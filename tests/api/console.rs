//! The web console in a real browser (Debian chromium + chromedriver driven
//! by fantoccini). Screenshots of each main state go to
//! target/console-screenshots/.

use crate::helpers::*;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
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
    let rows: Vec<Vec<String>> = csv
        .trim_start_matches('\u{feff}')
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect();
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
    b.wait_js("return document.getElementById('audit-filter-error').textContent", json!("Pick a date and time."))
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
