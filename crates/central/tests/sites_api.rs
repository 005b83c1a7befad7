//! `/api/sites` as a user sees it: a site created, changed and removed, piles put on it (one site
//! each), and bad terms answered 400 with the reason.

use serde_json::{json, Value};

use common::node::{api, options, start};

mod common;

#[tokio::test(flavor = "multi_thread")]
async fn sites_are_created_changed_and_removed_and_bad_terms_get_the_reason() {
    let running = start(options("sites-api", "sites-api")).await;
    let addr = running.local_addr;
    for id in ["SITE-P1", "SITE-P2", "SITE-P3"] {
        let (status, _) = api(addr, "POST", "/api/piles", Some(json!({ "id": id }))).await;
        assert_eq!(status, 201, "{id}");
    }

    let (status, depot) = api(
        addr,
        "POST",
        "/api/sites",
        Some(json!({"name": "Depot", "capacity_a": 63, "failsafe_a": 10})),
    )
    .await;
    assert_eq!(status, 201, "{depot}");
    let id = depot["id"].as_i64().unwrap();
    assert_eq!(
        (
            &depot["name"],
            &depot["capacity_a"],
            &depot["phases"],
            &depot["min_a"],
            &depot["failsafe_a"],
            &depot["settle_s"],
            &depot["schedule"],
        ),
        (
            &json!("Depot"),
            &json!(63.0),
            &json!(1),
            &json!(6.0),
            &json!(10.0),
            &json!(60),
            &Value::Null
        )
    );
    let (status, office) = api(
        addr,
        "POST",
        "/api/sites",
        Some(json!({"name": "Office", "capacity_kw": 22, "phases": 3})),
    )
    .await;
    assert_eq!((status, &office["capacity_a"]), (201, &json!(31.8)));
    let office_id = office["id"].as_i64().unwrap();

    // Piles join; one site each.
    let put = |pile: &str, site: i64| format!("/api/sites/{site}/piles/{pile}");
    let (status, site) = api(addr, "PUT", &put("SITE-P1", id), None).await;
    assert_eq!(status, 200, "{site}");
    let (status, site) = api(
        addr,
        "PUT",
        &put("SITE-P2", id),
        Some(json!({"connector": 1})),
    )
    .await;
    assert_eq!(status, 200, "{site}");
    assert_eq!(
        site["piles"],
        json!([{"pile": "SITE-P1", "connector": null}, {"pile": "SITE-P2", "connector": 1}])
    );
    let (status, refused) = api(addr, "PUT", &put("SITE-P1", office_id), None).await;
    assert_eq!(
        (status, refused["error"].as_str().unwrap()),
        (
            400,
            format!("pile SITE-P1 is on site {id}: take it off that site first").as_str()
        )
    );
    let (status, _) = api(addr, "PUT", &put("NO-SUCH", id), None).await;
    assert_eq!(status, 404);

    // The fail-safe of every connector together must fit the lowest capacity: 3 × 10 A of
    // 63 A do, a schedule lowering it to 25 A does not.
    let (status, _) = api(addr, "PUT", &put("SITE-P3", id), None).await;
    assert_eq!(status, 200);
    let peak = json!({"schedule": {"cycle": "daily",
        "periods": [{"start": 1020, "end": 1260, "limit_a": 25}]}});
    let (status, refused) = api(addr, "PATCH", &format!("/api/sites/{id}"), Some(peak)).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(
        refused["error"],
        "3 connectors at the fail-safe 10 A draw 30 A, above the lowest capacity 25 A"
    );
    let peak = json!({"schedule": {"cycle": "daily",
        "periods": [{"start": 1020, "end": 1260, "limit_a": 32}]}, "name": "Depot yard"});
    let (status, changed) = api(addr, "PATCH", &format!("/api/sites/{id}"), Some(peak)).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (
            &changed["name"],
            &changed["capacity_a"],
            &changed["schedule"]["periods"][0]["limit_a"]
        ),
        (&json!("Depot yard"), &json!(63.0), &json!(32.0))
    );

    // Bad terms: each a 400 with the reason.
    let table = [
        (
            json!({"name": "A", "capacity_a": 10, "min_a": 16}),
            "capacity_a 10 is below min_a 16: no session could charge",
        ),
        (
            json!({"name": "A", "capacity_a": 63, "schedule": {"cycle": "daily", "covers_all": true,
                "periods": [{"start": 0, "end": 600, "limit_a": 32},
                            {"start": 660, "end": 1440, "limit_a": 63}]}}),
            "schedule covers the whole day but has a gap from minute 600 to minute 660",
        ),
        (
            json!({"name": "A", "capacity_a": 63, "schedule": {"cycle": "weekly",
                "periods": [{"start": 0, "end": 600, "limit_a": 32},
                            {"start": 500, "end": 900, "limit_a": 20}]}}),
            "schedule periods 0 and 1 overlap",
        ),
        (json!({"capacity_a": 63}), "`name` is required"),
        (
            json!({"name": "A", "capacity_a": 63, "phases": 2}),
            "phases must be 1 or 3, not 2",
        ),
    ];
    for (body, reason) in table {
        let (status, answer) = api(addr, "POST", "/api/sites", Some(body.clone())).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (400, Some(reason)),
            "{body}"
        );
    }
    let (status, answer) = api(
        addr,
        "POST",
        "/api/sites",
        Some(json!({"name": "A", "x": 1})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("unknown field"),
        "{answer}"
    );

    // The site's own view lists its sessions (none running) and its log (empty).
    let (status, site) = api(addr, "GET", &format!("/api/sites/{id}"), None).await;
    assert_eq!((status, &site["sessions"]), (200, &json!([])));
    let (status, log) = api(addr, "GET", &format!("/api/sites/{id}/allocations"), None).await;
    assert_eq!((status, log), (200, json!([])));
    let (status, _) = api(
        addr,
        "GET",
        &format!("/api/sites/{id}/allocations?limit=0"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let (_, all) = api(addr, "GET", "/api/sites", None).await;
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Depot yard", "Office"]);

    // A pile taken off is free for another site; a site removed frees its piles.
    let (status, _) = api(addr, "DELETE", &put("SITE-P1", id), None).await;
    assert_eq!(status, 204);
    let (status, _) = api(addr, "DELETE", &put("SITE-P1", id), None).await;
    assert_eq!(status, 404);
    let (status, _) = api(addr, "PUT", &put("SITE-P1", office_id), None).await;
    assert_eq!(status, 200);
    let (status, _) = api(addr, "DELETE", &format!("/api/sites/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = api(addr, "GET", &format!("/api/sites/{id}"), None).await;
    assert_eq!(status, 404);
    let (status, _) = api(addr, "PUT", &put("SITE-P2", office_id), None).await;
    assert_eq!(status, 200);
}
