//! List queries (filterBy, search, sortBy, offset/limit) and CSV export.

use crate::helpers::*;
use serde_json::{Value, json};

fn names(list: &Value) -> Vec<String> {
    list["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn seeded() -> (TestApp, String) {
    let app = spawn_app().await;
    let api = app.api().await;
    for n in ["alpha-build", "beta-deploy", "gamma-build", "delta-scan", "epsilon"] {
        api.create_app(n).await;
    }
    let token = api.token.clone();
    (app, token)
}

#[tokio::test]
async fn filter_operators_select_the_documented_rows() {
    let (app, token) = seeded().await;
    let api = Api { app: &app, token };
    let q = |f: &'static str| {
        let api = &api;
        async move {
            let url = format!(
                "/api/v1/apps?sortBy=name&filterBy={}",
                percent_encoding::utf8_percent_encode(f, percent_encoding::NON_ALPHANUMERIC)
            );
            let list: Value = api.get(&url).await.json().await.unwrap();
            names(&list)
        }
    };
    assert_eq!(q("name==beta-deploy").await, ["beta-deploy"]);
    assert_eq!(q("name!=admin").await.len(), 5);
    assert_eq!(q("name=@BUILD").await, ["alpha-build", "gamma-build"]);
    assert_eq!(
        q("name!@build").await,
        ["admin", "beta-deploy", "delta-scan", "epsilon"]
    );
    assert_eq!(q("name=^gam").await, ["gamma-build"]);
    assert_eq!(q("name=$scan").await, ["delta-scan"]);
    assert_eq!(q("name<=beta-deploy").await, ["admin", "alpha-build", "beta-deploy"]);
    assert_eq!(q("name>=epsilon").await, ["epsilon", "gamma-build"]);
    assert_eq!(q("createdAt>=2000-01-01T00:00:00Z").await.len(), 6);
    assert_eq!(q("createdAt<=2000-01-01T00:00:00Z").await.len(), 0);
    assert_eq!(
        q("createdAt>=2020-01-01").await.len(),
        6,
        "a bare date is its first instant in UTC"
    );
    assert_eq!(q("createdAt<=2020-01-01").await.len(), 0);
    assert_eq!(q("createdByName==system").await, ["admin"], "the creator by name");
    assert_eq!(
        q("lastLogin!=0").await.len(),
        6,
        "never-logged-in rows match != (admin logged in)"
    );
    assert_eq!(q("enabled==true").await.len(), 6);
    assert_eq!(q("accessRules=@System administrator").await, ["admin"]);
    assert_eq!(q("createdBy==system").await, ["admin"]);
}

#[tokio::test]
async fn several_filters_combine_and_search_spans_name_client_id_and_creator() {
    let (app, token) = seeded().await;
    let api = Api { app: &app, token };
    let list: Value = api
        .get("/api/v1/apps?filterBy=name%3D%40build&filterBy=name%3D%5Egam")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&list), ["gamma-build"]);
    let list: Value = api.get("/api/v1/apps?search=DELTA").await.json().await.unwrap();
    assert_eq!(names(&list), ["delta-scan"]);
    let admin_prefix = &app.admin_id[..8];
    let list: Value = api
        .get(&format!("/api/v1/apps?search={admin_prefix}&sortBy=name"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["totalRecords"], 6, "every app was created by the admin client");
}

#[tokio::test]
async fn sorting_and_pagination_are_stable_and_total_counts_the_filtered_set() {
    let (app, token) = seeded().await;
    let api = Api { app: &app, token };
    let all: Value = api
        .get("/api/v1/apps?sortBy=name&sortOrder=desc")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        names(&all),
        [
            "gamma-build",
            "epsilon",
            "delta-scan",
            "beta-deploy",
            "alpha-build",
            "admin"
        ]
    );
    let page: Value = api
        .get("/api/v1/apps?sortBy=name&offset=2&limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["totalRecords"], 6);
    assert_eq!(names(&page), ["beta-deploy", "delta-scan"]);
    let past: Value = api.get("/api/v1/apps?offset=100").await.json().await.unwrap();
    assert_eq!(past["totalRecords"], 6);
    assert_eq!(names(&past).len(), 0);
    // Ties (same creator) break by id, so consecutive pages never overlap.
    let mut seen = Vec::new();
    for offset in 0..6 {
        let p: Value = api
            .get(&format!("/api/v1/apps?sortBy=createdBy&limit=1&offset={offset}"))
            .await
            .json()
            .await
            .unwrap();
        seen.extend(names(&p));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6);
}

#[tokio::test]
async fn bad_query_parameters_get_400_naming_the_valid_choices() {
    let app = spawn_app().await;
    let api = app.api().await;
    let body = assert_api_error(api.get("/api/v1/apps?filterBy=colour==red").await, 400, "unknown field").await;
    assert!(
        body["details"]["valid"]
            .as_array()
            .unwrap()
            .contains(&json!("clientId"))
    );
    assert_api_error(api.get("/api/v1/apps?filterBy=name~~x").await, 400, "operators").await;
    assert_api_error(api.get("/api/v1/apps?sortBy=colour").await, 400, "valid fields").await;
    assert_api_error(api.get("/api/v1/apps?sortOrder=up").await, 400, "asc or desc").await;
    assert_api_error(api.get("/api/v1/apps?limit=0").await, 400, "between 1 and 500").await;
    assert_api_error(api.get("/api/v1/apps?limit=501").await, 400, "between 1 and 500").await;
    assert_api_error(api.get("/api/v1/apps?offset=-1").await, 400, "offset").await;
    assert_api_error(api.get("/api/v1/apps?limit=ten").await, 400, "integer").await;
    assert_api_error(api.get("/api/v1/apps?colour=red").await, 400, "unknown query parameter").await;
    assert_api_error(api.get("/api/v1/apps?limit=1&limit=2").await, 400, "at most once").await;
    assert_api_error(
        api.get("/api/v1/apps?filterBy=createdAt>=yesterday").await,
        400,
        "RFC 3339",
    )
    .await;
    assert_api_error(api.get("/api/v1/apps?filterBy=enabled=@tru").await, 400, "boolean").await;
    assert_api_error(
        api.get("/api/v1/authorization/access-rules?filterBy=name==x").await,
        400,
        "unknown field",
    )
    .await;
}

#[tokio::test]
async fn a_filter_value_may_hold_commas_equals_and_percent_encoded_bytes() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let scope = api.create_scope("cluster", "a,b=c%d ✓", &tenant).await;
    let created = api.create_app("odd-scope").await;
    assert_eq!(
        api.grant(
            created["id"].as_str().unwrap(),
            "viewer",
            "cluster",
            scope["id"].as_str().unwrap()
        )
        .await
        .status(),
        201
    );
    let encoded =
        percent_encoding::utf8_percent_encode("scopeName==a,b=c%d ✓", percent_encoding::NON_ALPHANUMERIC).to_string();
    let rules: Value = api
        .get(&format!("/api/v1/authorization/access-rules?filterBy={encoded}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rules["totalRecords"], 1);
    let encoded =
        percent_encoding::utf8_percent_encode("accessRules=@b=c%d ✓", percent_encoding::NON_ALPHANUMERIC).to_string();
    let apps: Value = api
        .get(&format!("/api/v1/apps?filterBy={encoded}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(names(&apps), ["odd-scope"]);
}

#[tokio::test]
async fn csv_export_has_the_seed_columns_quoted_and_formula_safe() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let formula = api.create_scope("cluster", "=HYPERLINK(\"http://x\")", &tenant).await;
    let script = api.create_scope("cluster", "<script>alert(1)</script>", &tenant).await;
    let created = api.create_app("exported").await;
    let id = created["id"].as_str().unwrap();
    api.grant(id, "viewer", "cluster", formula["id"].as_str().unwrap())
        .await;
    api.grant(id, "editor", "cluster", script["id"].as_str().unwrap()).await;
    let resp = api
        .request(reqwest::Method::GET, "/api/v1/apps?sortBy=name")
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    assert_eq!(resp.headers()["x-total-records"], "2");
    assert_eq!(resp.headers()["x-truncated"], "false");
    let text = resp.text().await.unwrap();
    assert!(text.contains("\r\n"), "RFC 4180 line ends");
    let rows = parse_csv(&text);
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
    assert_eq!(rows.len(), 3);
    let exported = rows.iter().find(|r| r[0] == "exported").unwrap();
    assert_eq!(exported[1], created["clientId"].as_str().unwrap());
    assert!(exported[2].contains("<script>alert(1)</script>"), "{:?}", exported[2]);
    // The rules cell starts with the role name, so the formula sits inside it.
    assert!(!exported.iter().any(|c| c.starts_with('=')));
    let admin = rows.iter().find(|r| r[0] == "admin").unwrap();
    assert!(!admin[3].is_empty(), "admin logged in: Last login is filled");
    assert!(!text.contains("aas_"), "no secret in the export");
}

#[tokio::test]
async fn csv_export_honours_filters_and_column_selection_and_neutralises_leading_formulas() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let formula = api.create_scope("cluster", "=HYPERLINK(\"http://x\")", &tenant).await;
    let created = api.create_app("with-formula").await;
    api.grant(
        created["id"].as_str().unwrap(),
        "viewer",
        "cluster",
        formula["id"].as_str().unwrap(),
    )
    .await;
    let text = api
        .get("/api/v1/apps?format=csv&columns=name,accessRules&filterBy=name%3D%3Dwith-formula")
        .await
        .text()
        .await
        .unwrap();
    let rows = parse_csv(&text);
    assert_eq!(
        rows,
        vec![
            vec!["Application".to_string(), "Access rule(s)".to_string()],
            vec![
                "with-formula".to_string(),
                "Viewer (=HYPERLINK(\"http://x\"))".to_string()
            ]
        ]
    );
    assert_api_error(
        api.get("/api/v1/apps?format=csv&columns=name,secret").await,
        400,
        "unknown column",
    )
    .await;
    // columns= asks for CSV on its own (only the CSV has columns).
    let resp = api
        .get("/api/v1/apps?columns=name&filterBy=name%3D%3Dwith-formula")
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert_eq!(parse_csv(&resp.text().await.unwrap())[1], ["with-formula"]);
}

#[tokio::test]
async fn csv_export_stops_at_20000_rows_and_says_how_many_matched() {
    use appauth::store::{SledStore, Store, Write, keys};
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(&dir.path().join("data")).unwrap();
        let writes: Vec<Write> = (0..20_001)
            .map(|i| {
                let app = json!({
                    "id": format!("00000000-0000-4000-8000-{i:012}"),
                    "name": format!("bulk-{i:05}"),
                    "clientId": format!("10000000-0000-4000-8000-{i:012}"),
                    "secretHash": "00".repeat(32),
                    "enabled": true,
                    "createdBy": "seed",
                    "createdAt": 1_700_000_000_000_i64 + i,
                    "updatedAt": 1_700_000_000_000_i64 + i,
                });
                Write::Put(
                    keys::app(app["id"].as_str().unwrap()),
                    serde_json::to_vec(&app).unwrap(),
                )
            })
            .collect();
        store.apply(&writes).unwrap();
    }
    let app = spawn_in(dir, &[]).await;
    let api = app.api().await;
    let resp = api
        .get("/api/v1/apps?format=csv&filterBy=createdBy%3D%3Dseed&sortBy=name")
        .await;
    assert_eq!(resp.headers()["x-total-records"], "20001");
    assert_eq!(resp.headers()["x-exported-records"], "20000");
    assert_eq!(resp.headers()["x-truncated"], "true");
    let rows = parse_csv(&resp.text().await.unwrap());
    assert_eq!(rows.len(), 20_001, "header + 20,000 rows");
    assert_eq!(rows[1][0], "bulk-00000");
    assert_eq!(rows[20_000][0], "bulk-19999");
    let page: Value = api
        .get("/api/v1/apps?filterBy=createdBy%3D%3Dseed&limit=500")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["totalRecords"], 20_001);
    assert_eq!(page["applications"].as_array().unwrap().len(), 500);
}
