//! What operators' tooling sees of a fresh gateway (issue 28 item 12, issue 27 item 11):
//! the probes answer HEAD on every role's instance, and every metric docs/operations.md
//! lists is exported from start, labelled counters at zero for their known values.

use crate::helpers::spawn_app;

fn stop(mut server: std::process::Child) {
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(server.wait().unwrap().success());
}

/// Every `cidgate_…` name in the text, with `a_b_size|available|waiting` spelled out.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (start, _) in text.match_indices("`cidgate_") {
        let rest = &text[start + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '|'))
            .unwrap_or(rest.len());
        let mut parts = rest[..end].split('|');
        let first = parts.next().unwrap().to_owned();
        let stem = first[..first.rfind('_').unwrap() + 1].to_owned();
        names.push(first);
        names.extend(parts.map(|p| format!("{stem}{p}")));
    }
    names.sort();
    names.dedup();
    names
}

#[tokio::test]
async fn every_documented_metric_is_exported_from_start_with_known_labels_at_zero() {
    let app = spawn_app().await;
    let (server, base) = app.serve_process(|_| {}).await;
    let scraped = app
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    stop(server);

    let docs = std::fs::read_to_string("docs/operations.md").unwrap()
        + &std::fs::read_to_string("docs/profiles.md").unwrap();
    let names = metric_names(&docs);
    assert!(names.len() > 30, "{names:?}");
    for name in &names {
        let family = name.strip_suffix("_total").unwrap_or(name);
        assert!(
            scraped.contains(&format!("# TYPE {family} ")),
            "{name} is documented but not exported:\n{scraped}"
        );
    }
    for series in [
        r#"cidgate_lookups_total{outcome="cache"} 0"#,
        r#"cidgate_lookups_total{outcome="database"} 0"#,
        r#"cidgate_lookups_total{outcome="degraded_unknown"} 0"#,
        r#"cidgate_lookups_total{outcome="degraded_unverified"} 0"#,
        r#"cidgate_rate_limited_total{limit="lookups"} 0"#,
        r#"cidgate_rate_limited_total{limit="auth_failures"} 0"#,
        r#"cidgate_rate_limited_total{limit="pops"} 0"#,
        r#"cidgate_notifications_total{channel="cidgate_contacts"} 0"#,
        r#"cidgate_task_restarts_total{task="listener"} 0"#,
        r#"cidgate_task_restarts_total{task="lookup_batcher"} 0"#,
        r#"cidgate_task_restarts_total{task="retention"} 0"#,
        r#"cidgate_retention_step_failures_total{step="lookup_log"} 0"#,
        r#"cidgate_webhook_deliveries_total{outcome="delivered"} 0"#,
        r#"cidgate_webhook_deliveries_total{outcome="failed"} 0"#,
        r#"cidgate_webhook_deliveries_total{outcome="retrying"} 0"#,
        r#"cidgate_webhook_deliveries_total{outcome="gone"} 0"#,
    ] {
        assert!(
            scraped.lines().any(|line| line == series),
            "{series} is not exported:\n{scraped}"
        );
    }
}

#[tokio::test]
async fn a_deliver_only_instance_answers_head_on_its_probes() {
    let app = spawn_app().await;
    let (server, base) = app
        .serve_process(|command| {
            command.env("CIDGATE_ROLES", "deliver");
        })
        .await;
    let mut answers = Vec::new();
    for path in ["/healthz", "/readyz"] {
        let head = app.http.head(format!("{base}{path}")).send().await.unwrap();
        let post = app.http.post(format!("{base}{path}")).send().await.unwrap();
        answers.push((
            path,
            head.status(),
            post.status(),
            post.headers().get("allow").cloned(),
        ));
    }
    let metrics = app
        .http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    let metrics = metrics.text().await.unwrap();
    stop(server);
    for (path, head, post, allow) in answers {
        assert_eq!(head, 200, "HEAD {path}");
        assert_eq!(post, 405, "POST {path}");
        assert_eq!(allow.unwrap(), "GET, HEAD", "{path}");
    }
    assert!(
        metrics.contains(r#"cidgate_task_restarts_total{task="webhook_deliveries"} 0"#),
        "{metrics}"
    );
}
