//! Background tasks are supervised: a killed task comes back and works again, readiness
//! names a task that is down, and the retention job prunes what has aged out.

use cidgate::jobs::{Supervisor, TaskState, retention};
use serde_json::{Value, json};

use crate::helpers::{PROPAGATION, TestApp, eventually, spawn_app, spawn_app_and_jobs};

async fn readiness(app: &TestApp) -> (u16, Value) {
    let ready = app
        .http
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    (ready.status().as_u16(), ready.json().await.unwrap())
}

async fn wait_for_state(jobs: &Supervisor, task: &str, state: TaskState) {
    let reached = jobs
        .wait_until(PROPAGATION, |tasks| tasks[task].state == state)
        .await;
    assert!(
        reached,
        "{task} not {} within {PROPAGATION:?}",
        state.as_str()
    );
}

#[tokio::test]
async fn readiness_names_every_background_task_and_its_state() {
    let (app, _jobs) = spawn_app_and_jobs(|_| {}).await;

    let (status, body) = readiness(&app).await;

    assert_eq!(status, 200, "{body}");
    let running = json!({"state": "running", "restarts": 0});
    for task in [
        "listener",
        "lookup_batcher",
        "lookup_log_writer",
        "retention",
    ] {
        assert_eq!(body["tasks"][task], running, "{body}");
    }
}

#[tokio::test]
async fn a_killed_lookup_batcher_makes_the_gateway_unready_then_comes_back_and_answers() {
    let (app, jobs) = spawn_app_and_jobs(|_| {}).await;
    let acme = app.create_tenant("acme", "RO").await;
    let put = app
        .put_contact(
            &acme.sync_token,
            "1",
            &json!({"name": "Ana", "phones": ["0721000001"]}),
        )
        .await;
    assert_eq!(put.status(), 201);

    let killed = jobs
        .kill("lookup_batcher")
        .expect("the batcher is supervised");
    wait_for_state(&jobs, "lookup_batcher", TaskState::Restarting).await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(
        body["tasks"]["lookup_batcher"]["state"], "restarting",
        "{body}"
    );
    assert_eq!(body["database"], "up", "{body}");

    drop(killed);
    wait_for_state(&jobs, "lookup_batcher", TaskState::Running).await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["tasks"]["lookup_batcher"],
        json!({"state": "running", "restarts": 1})
    );
    // The restarted batcher took over the queue: a miss is answered from the database.
    let answer = app.lookup(&acme.lookup_token, "0721000001").await;
    assert!(answer.headers().get("x-cidgate-degraded").is_none());
    assert_eq!(answer.json::<Value>().await.unwrap()["name"], "Ana");
    let metrics = app
        .http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"cidgate_task_restarts_total{task="lookup_batcher"} 1"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_killed_listener_is_reported_disconnected_until_it_is_back() {
    let (app, jobs) = spawn_app_and_jobs(|_| {}).await;

    let killed = jobs.kill("listener").expect("the listener is supervised");
    wait_for_state(&jobs, "listener", TaskState::Restarting).await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["listener"], "disconnected", "{body}");
    assert_eq!(body["tasks"]["listener"]["state"], "restarting", "{body}");

    drop(killed);
    eventually(
        PROPAGATION,
        "the listener is back and connected",
        || async {
            let (status, body) = readiness(&app).await;
            status == 200 && body["listener"] == "connected"
        },
    )
    .await;
    assert_eq!(jobs.statuses()["listener"].restarts, 1);
}

#[tokio::test]
async fn a_killed_log_writer_keeps_the_gateway_ready_and_later_writes_what_was_recorded() {
    let (app, jobs) = spawn_app_and_jobs(|_| {}).await;
    let acme = app.create_tenant("acme", "RO").await;

    let killed = jobs
        .kill("lookup_log_writer")
        .expect("the writer is supervised");
    wait_for_state(&jobs, "lookup_log_writer", TaskState::Restarting).await;
    let (status, body) = readiness(&app).await;
    assert_eq!(status, 200, "lookups do not need the log: {body}");
    assert_eq!(
        body["tasks"]["lookup_log_writer"]["state"], "restarting",
        "{body}"
    );
    assert_eq!(
        app.lookup(&acme.lookup_token, "0721000009").await.status(),
        200
    );

    drop(killed);
    eventually(PROPAGATION, "the buffered lookup is written", || async {
        let client = app.pool.get().await.unwrap();
        let row = client
            .query_one("SELECT count(*) FROM lookup_log", &[])
            .await
            .unwrap();
        row.get::<_, i64>(0) == 1
    })
    .await;
}

#[tokio::test]
async fn a_tenants_own_lookup_log_retention_prunes_its_entries_and_no_one_elses() {
    let app = spawn_app().await;
    app.create_tenant("acme", "RO").await;
    app.create_tenant("beta", "RO").await;
    let set = app.cli(&["tenant", "set", "acme", "--lookup-log-retention-days", "7"]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let client = app.pool.get().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO lookup_log (tenant_id, at, outcome, latency_us)
             SELECT id, now() - age, 'unknown', 1
             FROM tenants, (VALUES (interval '8 days'), (interval '6 days'),
                                   (interval '91 days')) AS a (age);",
        )
        .await
        .unwrap();

    let steps = retention::standard_steps(&app.pool, 90);
    let outcomes = retention::run_once(&steps, &cidgate::metrics::Metrics::new()).await;

    // acme: 8 and 91 days old go (7 days kept); beta: only 91 days old (90 kept).
    assert_eq!(outcomes[0], ("lookup_log", Ok(3)));
    let left = client
        .query(
            "SELECT t.slug, count(*) FROM lookup_log l JOIN tenants t ON t.id = l.tenant_id
             GROUP BY t.slug ORDER BY t.slug",
            &[],
        )
        .await
        .unwrap();
    let left: Vec<(String, i64)> = left.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(left, [("acme".to_owned(), 1), ("beta".to_owned(), 2)]);

    let back = app.cli(&[
        "tenant",
        "set",
        "acme",
        "--lookup-log-retention-days",
        "default",
    ]);
    assert!(back.status.success());
    let row = client
        .query_one(
            "SELECT settings ? 'lookup_log_retention_days' FROM tenants WHERE slug = 'acme'",
            &[],
        )
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0), "back to the gateway's retention");
    let wrong = app.cli(&["tenant", "set", "acme", "--lookup-log-retention-days", "0"]);
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("from 1 to 3650"));
}

#[tokio::test]
async fn retention_prunes_the_lookup_log_and_deletion_times_past_their_days() {
    let app = spawn_app().await;
    app.create_tenant("acme", "RO").await;
    let client = app.pool.get().await.unwrap();
    client
        .batch_execute(
            "INSERT INTO lookup_log (tenant_id, at, outcome, latency_us)
             SELECT id, now() - age, 'unknown', 1
             FROM tenants, (VALUES (interval '91 days'), (interval '1 day')) AS a (age);
             INSERT INTO contact_tombstones (tenant_id, crm_id, deleted_at)
             SELECT id, crm_id, now() - age
             FROM tenants, (VALUES ('old', interval '91 days'), ('new', interval '89 days'),
                                   ('older', interval '200 days')) AS t (crm_id, age);",
        )
        .await
        .unwrap();

    let steps = retention::standard_steps(&app.pool, 90);
    let outcomes = retention::run_once(&steps, &cidgate::metrics::Metrics::new()).await;

    assert_eq!(
        outcomes,
        [
            ("lookup_log", Ok(1)),
            ("contact_tombstones", Ok(2)),
            ("agent_sessions", Ok(0))
        ]
    );
    let left = client
        .query_one(
            "SELECT (SELECT count(*) FROM lookup_log),
                    (SELECT string_agg(crm_id, ',') FROM contact_tombstones)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(left.get::<_, i64>(0), 1);
    assert_eq!(left.get::<_, String>(1), "new");
}

#[tokio::test]
async fn the_pbx_word_on_click_to_calls_is_followed_by_a_supervised_task() {
    let (app, jobs) = spawn_app_and_jobs(|_| {}).await;

    let (_, body) = readiness(&app).await;
    assert_eq!(
        body["tasks"]["click2call_results"],
        json!({"state": "running", "restarts": 0}),
        "{body}"
    );
    // Killed, it is restarted like every supervised task (its queue outlives the run).
    let killed = jobs
        .kill("click2call_results")
        .expect("the click-to-call follow-up is supervised");
    wait_for_state(&jobs, "click2call_results", TaskState::Restarting).await;
    drop(killed);
    wait_for_state(&jobs, "click2call_results", TaskState::Running).await;
    let (_, body) = readiness(&app).await;
    assert_eq!(body["tasks"]["click2call_results"]["restarts"], 1, "{body}");
}
