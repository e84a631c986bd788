//! Timeframes are read with their offsets, to the second, across whole and partial hours.

use chrono::Duration;
use serde_json::json;

use super::templates::six_calls;
use super::{call, day, local, post_calls, report_json, request, rows, service_user, tenant};
use crate::helpers::spawn_app;

#[tokio::test]
async fn timeframes_are_read_with_their_offsets_to_the_second() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let d = day();
    let next = d + Duration::days(1);
    let mut events = six_calls(d);
    // At the very end of the local day, and the first second of the next.
    events.extend(call(
        "late",
        local(d, "23:59:59"),
        Some(1_000),
        json!({"direction": "inbound", "agent": "200"}),
    ));
    events.extend(call(
        "early",
        local(next, "00:00:00"),
        Some(1_000),
        json!({"direction": "outbound", "agent": "200"}),
    ));
    post_calls(&app, &t.pbx, events).await;
    let (key, report) = service_user(&app, "acme", "bi", &[], "agent-talking-summary");
    let agent_200 = async |start: String, end: String| {
        let answer = report_json(
            &app,
            &key,
            &report,
            &request("json", &start, &end, &["200"], &[]),
        )
        .await;
        rows(&answer)[0][1..5].to_vec()
    };
    // in, out, internal, total
    let counts = |a: &str, b: &str, c: &str, t: &str| {
        vec![a.to_owned(), b.to_owned(), c.to_owned(), t.to_owned()]
    };
    // The local day: its last second counts, the next day's first does not.
    assert_eq!(
        agent_200(
            format!("{d}T00:00:00.000-06:00"),
            format!("{d}T23:59:59.000-06:00")
        )
        .await,
        counts("2", "1", "1", "4")
    );
    assert_eq!(
        agent_200(
            format!("{next}T00:00:00-06:00"),
            format!("{next}T23:59:59-06:00")
        )
        .await,
        counts("0", "1", "0", "1")
    );
    // The same instants written in another offset.
    assert_eq!(
        agent_200(
            format!("{d}T11:30:00+05:30"),
            format!("{next}T11:29:59+05:30")
        )
        .await,
        counts("2", "1", "1", "4")
    );
    // The UTC day of `d` ends at 18:00 local: the late call is on the next UTC day.
    assert_eq!(
        agent_200(format!("{d}T00:00:00Z"), format!("{d}T23:59:59Z")).await,
        counts("1", "1", "1", "3")
    );
    // Partial hours at both ends (read from the calls, not the hourly figures).
    assert_eq!(
        agent_200(
            format!("{d}T23:30:00-06:00"),
            format!("{next}T00:30:00-06:00")
        )
        .await,
        counts("1", "1", "0", "2")
    );
    assert_eq!(
        agent_200(format!("{d}T08:59:59-06:00"), format!("{d}T09:49:59-06:00")).await,
        counts("1", "1", "0", "2")
    );
    assert_eq!(
        agent_200(
            format!("{d}T09:00:01-06:00"),
            format!("{next}T00:30:00-06:00")
        )
        .await,
        counts("1", "2", "1", "4")
    );
    // One second, exactly.
    assert_eq!(
        agent_200(format!("{d}T23:59:59-06:00"), format!("{d}T23:59:59-06:00")).await,
        counts("1", "0", "0", "1")
    );
    // Three local days: whole UTC days in the middle (the daily figures), hours at the ends.
    let before = d - Duration::days(1);
    assert_eq!(
        agent_200(
            format!("{before}T00:00:00-06:00"),
            format!("{next}T23:59:59-06:00")
        )
        .await,
        counts("2", "2", "1", "5")
    );
}
