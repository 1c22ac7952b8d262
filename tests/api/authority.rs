//! Admin authority (DESIGN §4 "Admin authority", issue 11): every escalation
//! path a delegated administrator could try, through HTTP, each refused; live
//! authority; the admin audience; never zero administrators.

use crate::helpers::*;
use serde_json::{Value, json};

fn id(v: &Value) -> &str {
    v["id"].as_str().unwrap()
}

/// The `admin` application's id.
async fn admin_app_id(api: &Api<'_>) -> String {
    let list: Value = api.get("/api/v1/apps?filterBy=name==admin").await.json().await.unwrap();
    list["applications"][0]["id"].as_str().unwrap().to_owned()
}

/// The id of the rule an application holds for `role`.
async fn rule_id(api: &Api<'_>, app_id: &str, role: &str) -> String {
    let app: Value = api.get(&format!("/api/v1/apps/{app_id}")).await.json().await.unwrap();
    app["accessRules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["roleId"] == role)
        .unwrap_or_else(|| panic!("{app_id} has no {role} rule: {app}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn an_application_administrator_cannot_grant_itself_system_administrator() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let (me, token) = api.app_with_tenant_role("ci-admin", "application-administrator").await;
    let aa = Api { app: &app, token };
    let body = assert_api_error(
        aa.grant(id(&me), "system-administrator", "tenant", &tenant).await,
        403,
        "own application",
    )
    .await;
    assert_eq!(body["code"], 403);
    // Its next token is no stronger: scopes stay out of reach.
    let again = Api {
        app: &app,
        token: app
            .token_for(me["clientId"].as_str().unwrap(), me["secret"].as_str().unwrap())
            .await,
    };
    let resp = again
        .post(
            "/api/v1/scopes",
            json!({"type": "cluster", "name": "x", "parentId": tenant}),
        )
        .await;
    assert_api_error(resp, 403, "missing permission scopes:write").await;
}

#[tokio::test]
async fn an_application_administrator_cannot_grant_a_stronger_role_to_another_application() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let cluster = api.create_scope("cluster", "Cluster: A", &tenant).await;
    let (_, token) = api.app_with_tenant_role("ci-admin", "application-administrator").await;
    let aa = Api { app: &app, token };
    let accomplice = aa.create_app("accomplice").await;
    // A stronger role on the tenant, and on a scope below it.
    assert_api_error(
        aa.grant(id(&accomplice), "system-administrator", "tenant", &tenant)
            .await,
        403,
        "missing permission scopes:write",
    )
    .await;
    assert_api_error(
        aa.grant(id(&accomplice), "l1-researcher", "cluster", id(&cluster))
            .await,
        403,
        "missing permission workloads",
    )
    .await;
    // A role within its ceiling is fine.
    assert_eq!(
        aa.grant(id(&accomplice), "application-administrator", "cluster", id(&cluster))
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn a_role_held_only_on_a_cluster_cannot_be_granted_on_the_tenant_above_it() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let cluster = api.create_scope("cluster", "Cluster: A", &tenant).await;
    let (me, token) = api.app_with_tenant_role("mixed", "application-administrator").await;
    assert_eq!(
        api.grant(id(&me), "l1-researcher", "cluster", id(&cluster))
            .await
            .status(),
        201
    );
    let me_now = Api {
        app: &app,
        token: app
            .token_for(me["clientId"].as_str().unwrap(), me["secret"].as_str().unwrap())
            .await,
    };
    let other = me_now.create_app("other").await;
    assert_eq!(
        me_now
            .grant(id(&other), "l1-researcher", "cluster", id(&cluster))
            .await
            .status(),
        201,
        "held on the cluster: may grant it there"
    );
    assert_api_error(
        me_now.grant(id(&other), "l1-researcher", "tenant", &tenant).await,
        403,
        "missing permission workloads",
    )
    .await;
    let _ = token;
}

#[tokio::test]
async fn an_application_administrator_cannot_touch_the_admin_application() {
    let app = spawn_app().await;
    let api = app.api().await;
    let admin_id = admin_app_id(&api).await;
    let admin_rule = rule_id(&api, &admin_id, "system-administrator").await;
    let (_, token) = api.app_with_tenant_role("ci-admin", "application-administrator").await;
    let aa = Api { app: &app, token };
    let needle = "beyond your own authority";
    let resp = aa.post(&format!("/api/v1/apps/{admin_id}/secret"), json!({})).await;
    let body = assert_api_error(resp, 403, needle).await;
    assert!(
        body.get("secret").is_none() && !body.to_string().contains("aas_"),
        "{body}"
    );
    assert_api_error(
        aa.patch(&format!("/api/v1/apps/{admin_id}"), json!({"enabled": false}))
            .await,
        403,
        needle,
    )
    .await;
    assert_api_error(aa.delete(&format!("/api/v1/apps/{admin_id}")).await, 403, needle).await;
    assert_api_error(
        aa.delete(&format!("/api/v1/authorization/access-rules/{admin_rule}"))
            .await,
        403,
        needle,
    )
    .await;
    // The real administrator is untouched.
    let fresh = app.admin_token().await;
    assert_eq!(
        Api {
            app: &app,
            token: fresh
        }
        .get("/api/v1/apps")
        .await
        .status(),
        200
    );
}

#[tokio::test]
async fn a_viewer_is_refused_every_write() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let victim = api.create_app("victim").await;
    let (_, token) = api.app_with_tenant_role("auditor", "viewer").await;
    let viewer = Api { app: &app, token };
    let v = id(&victim);
    let attempts = [
        viewer.post("/api/v1/apps", json!({"name": "new-one"})).await,
        viewer
            .patch(&format!("/api/v1/apps/{v}"), json!({"enabled": false}))
            .await,
        viewer.delete(&format!("/api/v1/apps/{v}")).await,
        viewer.post(&format!("/api/v1/apps/{v}/secret"), json!({})).await,
        viewer.grant(v, "viewer", "tenant", &tenant).await,
        viewer
            .post(
                "/api/v1/scopes",
                json!({"type": "cluster", "name": "c", "parentId": tenant}),
            )
            .await,
    ];
    for resp in attempts {
        assert_api_error(resp, 403, "missing permission").await;
    }
    // Reads are what a viewer has.
    assert_eq!(viewer.get("/api/v1/apps").await.status(), 200);
    assert_eq!(viewer.get("/api/v1/audit").await.status(), 200);
}

#[tokio::test]
async fn a_demoted_callers_old_token_loses_its_power_on_the_next_request() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let (me, token) = api
        .app_with_tenant_role("soon-demoted", "application-administrator")
        .await;
    let old = Api { app: &app, token };
    assert_eq!(old.post("/api/v1/apps", json!({"name": "before"})).await.status(), 201);
    let rule = rule_id(&api, id(&me), "application-administrator").await;
    assert_eq!(
        api.delete(&format!("/api/v1/authorization/access-rules/{rule}"))
            .await
            .status(),
        204
    );
    assert_api_error(
        old.post("/api/v1/apps", json!({"name": "after"})).await,
        403,
        "missing permission apps:write",
    )
    .await;
    assert_api_error(old.get("/api/v1/apps").await, 403, "missing permission apps:read").await;
    // Nor can it put its rule back with the old token.
    assert_api_error(
        old.grant(id(&me), "application-administrator", "tenant", &tenant).await,
        403,
        "missing permission",
    )
    .await;
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused_by_the_admin_api_and_bearer_introspection() {
    let app = spawn_app_with(&["issuer.audiences=urn:appauth:api,https://billing.example".into()]).await;
    let resp = app
        .token_request(
            &app.admin_id,
            &app.admin_secret,
            "&audience=https%3A%2F%2Fbilling.example",
        )
        .await;
    assert_eq!(resp.status(), 200);
    let foreign: Value = resp.json().await.unwrap();
    let token = foreign["access_token"].as_str().unwrap().to_owned();
    let api = Api {
        app: &app,
        token: token.clone(),
    };
    let resp = api.get("/api/v1/apps").await;
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"appauth\", error=\"invalid_token\""
    );
    assert_api_error(resp, 401, "urn:appauth:api").await;
    let resp = app
        .post_form(
            "/oauth/introspect",
            &format!("token={token}"),
            Some(format!("Bearer {token}")),
        )
        .await;
    let body = assert_oauth_error(resp, 401, "invalid_token").await;
    assert!(
        body["error_description"].as_str().unwrap().contains("audience"),
        "{body}"
    );
}

#[tokio::test]
async fn a_deleted_applications_token_is_refused() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (me, token) = api.app_with_tenant_role("short-lived", "system-administrator").await;
    let doomed = Api { app: &app, token };
    assert_eq!(doomed.get("/api/v1/apps").await.status(), 200);
    assert_eq!(api.delete(&format!("/api/v1/apps/{}", id(&me))).await.status(), 204);
    assert_api_error(doomed.get("/api/v1/apps").await, 401, "invalid bearer token").await;
}

#[tokio::test]
async fn the_last_system_administrator_cannot_be_disabled_deleted_or_lose_its_rule() {
    let app = spawn_app().await;
    let api = app.api().await;
    let admin_id = admin_app_id(&api).await;
    let rule = rule_id(&api, &admin_id, "system-administrator").await;
    let needle = "last enabled application holding System administrator";
    assert_api_error(
        api.patch(&format!("/api/v1/apps/{admin_id}"), json!({"enabled": false}))
            .await,
        409,
        needle,
    )
    .await;
    assert_api_error(api.delete(&format!("/api/v1/apps/{admin_id}")).await, 409, needle).await;
    assert_api_error(
        api.delete(&format!("/api/v1/authorization/access-rules/{rule}")).await,
        409,
        needle,
    )
    .await;
    // With a second administrator, the first may go.
    let (second, token) = api.app_with_tenant_role("second-admin", "system-administrator").await;
    let second_api = Api { app: &app, token };
    assert_eq!(
        second_api.delete(&format!("/api/v1/apps/{admin_id}")).await.status(),
        204
    );
    // ... and now the second one is the last.
    assert_api_error(
        second_api
            .patch(&format!("/api/v1/apps/{}", id(&second)), json!({"enabled": false}))
            .await,
        409,
        needle,
    )
    .await;
}

#[tokio::test]
async fn responses_that_carry_a_secret_are_never_cached() {
    let app = spawn_app().await;
    let api = app.api().await;
    let resp = api.post("/api/v1/apps", json!({"name": "cached-not"})).await;
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
    let created: Value = resp.json().await.unwrap();
    let resp = api
        .post(&format!("/api/v1/apps/{}/secret", id(&created)), json!({}))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(resp.headers()["pragma"], "no-cache");
}

#[tokio::test]
async fn admin_requests_past_the_per_caller_limit_get_429_with_retry_after() {
    let app = spawn_app_with(&["limits.admin_requests_per_minute=8".into()]).await;
    let api = app.api().await;
    let (_, token) = api.app_with_tenant_role("other-caller", "viewer").await;
    let mut served = 0;
    let refused = loop {
        let resp = api.get("/api/v1/apps").await;
        if resp.status() != 200 {
            break resp;
        }
        served += 1;
        assert!(served <= 8, "never limited");
    };
    assert!(served >= 1, "the setup alone should not exhaust the limit");
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_api_error(refused, 429, "too many admin requests").await;
    // The limit is per caller: another one is served.
    assert_eq!(Api { app: &app, token }.get("/api/v1/apps").await.status(), 200);
}

#[tokio::test]
async fn ids_in_upper_case_name_the_same_records_and_do_not_slip_past_the_self_checks() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let upper = |s: &str| s.to_ascii_uppercase();
    // Paths and bodies: RFC 9562 §4 hex is case-insensitive on input.
    let other = api.create_app("mixed-case").await;
    let read: Value = api
        .get(&format!("/api/v1/apps/{}", upper(id(&other))))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["id"], other["id"]);
    let cluster: Value = api
        .post(
            "/api/v1/scopes",
            json!({"type": "cluster", "name": "Cluster: Upper", "parentId": upper(&tenant)}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cluster["parentId"], tenant.as_str(), "{cluster}");
    let rule = api
        .grant(
            &upper(id(&other)),
            "viewer",
            "cluster",
            &upper(cluster["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(rule.status(), 201);
    let rule: Value = rule.json().await.unwrap();
    assert_eq!((&rule["subjectId"], &rule["scopeId"]), (&other["id"], &cluster["id"]));
    let found: Value = api
        .get(&format!(
            "/api/v1/authorization/access-rules?filterBy=subjectId=={}",
            upper(id(&other))
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found["totalRecords"], 1, "filters take upper-case ids too: {found}");
    assert_eq!(
        api.get(&format!("/api/v1/scopes/{}", upper(cluster["id"].as_str().unwrap())))
            .await
            .status(),
        200
    );
    // The self checks see the same id: an Application administrator cannot
    // grant itself a role, nor rotate its own secret with an overlap, by
    // spelling its id in capitals.
    let (me, token) = api.app_with_tenant_role("ci-admin", "application-administrator").await;
    let aa = Api { app: &app, token };
    assert_api_error(
        aa.grant(&upper(id(&me)), "viewer", "tenant", &tenant).await,
        403,
        "own application",
    )
    .await;
    let own = admin_app_id(&api).await;
    assert_api_error(
        api.post(
            &format!("/api/v1/apps/{}/secret", upper(&own)),
            json!({"graceSeconds": 60}),
        )
        .await,
        403,
        "own application",
    )
    .await;
}

#[tokio::test]
async fn an_application_cannot_change_its_own_keys_or_secret_through_an_application_it_created() {
    let app = spawn_app().await;
    let api = app.api().await;
    let tenant = api.tenant_id().await;
    let (me, token) = api.app_with_tenant_role("ops-admin", "system-administrator").await;
    let mine = Api { app: &app, token };
    // `ops-admin` creates a helper with its own role, and the helper a second one.
    let (helper, helper_token) = mine.app_with_tenant_role("helper", "system-administrator").await;
    let helper_api = Api {
        app: &app,
        token: helper_token,
    };
    let (_, second_token) = helper_api
        .app_with_tenant_role("second-helper", "system-administrator")
        .await;
    let second = Api {
        app: &app,
        token: second_token,
    };
    let key = crate::private_key_jwt::ClientKey::new("planted");
    for (who, caller) in [("helper", &helper_api), ("the helper's helper", &second)] {
        let resp = caller
            .patch(&format!("/api/v1/apps/{}", id(&me)), json!({"jwks": key.jwks()}))
            .await;
        let body = assert_api_error(resp, 403, "created yours").await;
        assert!(body["message"].as_str().unwrap().contains("ops-admin"), "{who}: {body}");
        let resp = caller
            .post(
                &format!("/api/v1/apps/{}/secret", id(&me)),
                json!({"graceSeconds": 600}),
            )
            .await;
        assert_api_error(resp, 403, "created yours").await;
        let resp = caller.grant(id(&me), "viewer", "tenant", &tenant).await;
        assert_api_error(resp, 403, "created yours").await;
    }
    // The creator itself may still manage what it created, and an
    // unrelated administrator may manage `ops-admin`.
    let resp = mine
        .patch(&format!("/api/v1/apps/{}", id(&helper)), json!({"jwks": key.jwks()}))
        .await;
    assert_eq!(resp.status(), 200);
    let resp = api
        .patch(&format!("/api/v1/apps/{}", id(&me)), json!({"jwks": key.jwks()}))
        .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn an_administrator_cannot_give_an_application_longer_lived_tokens_than_its_own() {
    let app = spawn_app().await;
    let api = app.api().await;
    let resp = api
        .post(
            "/api/v1/apps",
            json!({"name": "short-lived-admin", "tokenTtlSeconds": 600}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let me: Value = resp.json().await.unwrap();
    let tenant = api.tenant_id().await;
    assert_eq!(
        api.grant(id(&me), "application-administrator", "tenant", &tenant)
            .await
            .status(),
        201
    );
    let mine = Api {
        app: &app,
        token: app
            .token_for(me["clientId"].as_str().unwrap(), me["secret"].as_str().unwrap())
            .await,
    };
    for body in [
        json!({"name": "longer", "tokenTtlSeconds": 601}),
        json!({"name": "default-lifetime"}),
    ] {
        assert_api_error(
            mine.post("/api/v1/apps", body).await,
            403,
            "tokenTtlSeconds may be at most 600",
        )
        .await;
    }
    let resp = mine
        .post("/api/v1/apps", json!({"name": "as-long", "tokenTtlSeconds": 600}))
        .await;
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    assert_api_error(
        mine.patch(
            &format!("/api/v1/apps/{}", id(&created)),
            json!({"tokenTtlSeconds": 3600}),
        )
        .await,
        403,
        "tokenTtlSeconds may be at most 600",
    )
    .await;
}
