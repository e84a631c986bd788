//! The PBX recipes as the real PBXs read them (issue 30 items 1–3, 6, 7): the text of
//! each recipe, and the answer form it asks cidgate for, read the way the PBX reads it.

use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

const EXTENSIONS: &str = include_str!("../../deploy/pbx/asterisk/extensions.conf");

/// The dialplan's lines that run (not its comments).
fn dialplan_code() -> impl Iterator<Item = &'static str> {
    EXTENSIONS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
}

/// `CUT(var,|,n)`: the n-th field (1-based), or nothing.
fn cut(text: &str, n: usize) -> &str {
    text.split('|').nth(n - 1).unwrap_or_default()
}

/// `URIDECODE()`.
fn uridecode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

/// One character of FILTER's allowed set as `ast_get_encoded_char` reads it.
fn encoded_char(s: &[u8]) -> Option<(u8, usize)> {
    match s {
        [] => None,
        [b'\\', b'n', ..] => Some((b'\n', 2)),
        [b'\\', b'r', ..] => Some((b'\r', 2)),
        [b'\\', b't', ..] => Some((b'\t', 2)),
        [b'\\', b'x', h @ ..] => {
            let hex: String = h.iter().take(2).map(|&b| b as char).collect();
            Some((u8::from_str_radix(&hex, 16).ok()?, 2 + hex.len()))
        }
        [b'\\', c, ..] => Some((*c, 2)),
        [c, ..] => Some((*c, 1)),
    }
}

/// Asterisk's `FILTER(allowed,text)` (funcs/func_strings.c): ranges `A-Z`, encoded
/// characters; a `-` after a character makes a range with the next one.
fn asterisk_filter(allowed: &str, text: &str) -> String {
    let allowed = allowed.as_bytes();
    let mut set = [false; 256];
    let mut i = 0;
    while let Some((c1, used)) = encoded_char(&allowed[i..]) {
        i += used;
        if allowed.get(i) == Some(&b'-') {
            let (c2, used) = encoded_char(&allowed[i + 1..]).unwrap_or((c1, 0));
            i += used + 1;
            for c in c1.min(c2)..=c2.max(c1) {
                set[c as usize] = true;
            }
        } else {
            set[c1 as usize] = true;
        }
    }
    text.chars()
        .filter(|c| c.is_ascii() && set[*c as usize])
        .collect()
}

/// The allowed sets of the recipe's FILTER calls on `variable`.
fn filter_sets(variable: &str) -> Vec<&'static str> {
    dialplan_code()
        .flat_map(|line| {
            line.match_indices("FILTER(")
                .map(move |(at, _)| &line[at + 7..])
        })
        .filter_map(|rest| rest.split_once(','))
        .filter(|(_, arg)| arg.starts_with(variable))
        .map(|(set, _)| set)
        .collect()
}

#[test]
fn the_asterisk_recipe_never_decodes_json_and_asks_for_the_text_form() {
    for line in dialplan_code() {
        assert!(!line.contains("JSON_DECODE"), "{line}");
    }
    let lookup = dialplan_code()
        .find(|l| l.contains("${CURL(${CIDGATE_URL}"))
        .unwrap();
    assert!(lookup.contains("${CIDGATE_URL}?format=text&"), "{lookup}");
    // The display name drops quotes and backslashes while they are still encoded.
    let code: Vec<&str> = dialplan_code().collect();
    assert!(code.contains(&"same => n,Set(LOCAL(v)=${STRREPLACE(v,%22)})"));
    assert!(code.contains(&"same => n,Set(LOCAL(v)=${STRREPLACE(v,%5C)})"));
}

#[test]
fn the_asterisk_recipe_keeps_hyphens_in_queue_names_and_agents() {
    let direct_line = filter_sets("${CIDGATE_DIRECT_LINE}");
    let agent = filter_sets("${n}");
    assert_eq!((direct_line.len(), agent.len()), (1, 1));
    let direct_line = direct_line[0];
    assert_eq!(asterisk_filter(direct_line, "sales-queue"), "sales-queue");
    assert_eq!(asterisk_filter(direct_line, "PJSIP/101"), "PJSIP/101");
    assert_eq!(
        asterisk_filter(direct_line, "PJSIP/+4420@trunk"),
        "PJSIP/4420trunk",
        "a dial string is no queue name: it is dropped"
    );
    assert_eq!(asterisk_filter(agent[0], "ion-popescu"), "ion-popescu");
}

impl TestApp {
    /// The lookup as the Asterisk recipe sends it.
    async fn text_lookup(&self, token: &str, format: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/api/lookup", self.address))
            .query(&[
                ("format", format),
                ("telephone", "0721234567"),
                ("dnid", "0210000000"),
                ("call_id", "1796213375.42"),
            ])
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn the_text_form_reads_in_the_dialplan_as_the_contact_was_written() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme", "RO").await;

    let unknown = app.text_lookup(&t.lookup_token, "text").await;
    assert_eq!(unknown.status(), 200);
    assert_eq!(
        unknown.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(unknown.text().await.unwrap(), "unknown|||||||||");

    let name = "Ana \"A\" Pop, Jr.|x\\";
    let contact = json!({
        "name": name,
        "phones": ["0721234567"],
        "direct_line": "sales-queue",
        "language": "ro",
    });
    let put = app.put_contact(&t.sync_token, "4294967296", &contact).await;
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
    let answer = app.text_lookup(&t.lookup_token, "text").await;
    let resp = answer.text().await.unwrap();
    assert_eq!(cut(&resp, 1), "found");
    // An id past 2³¹−1 stays itself (JSON_DECODE's C int wrapped it).
    assert_eq!(uridecode(cut(&resp, 2)), "4294967296");
    assert_eq!(uridecode(cut(&resp, 3)), name);
    let display = cut(&resp, 3).replace("%22", "").replace("%5C", "");
    assert_eq!(uridecode(&display), "Ana A Pop, Jr.|x");
    assert_eq!(uridecode(cut(&resp, 5)), "sales-queue");
    assert_eq!(uridecode(cut(&resp, 9)), "ro");
    assert_eq!(resp.split('|').count(), 10, "{resp}");
    assert!(!resp.contains("null") && !resp.contains('\n'), "{resp}");

    // Without the option, or with json, the nine-key JSON.
    let json_answer = app.text_lookup(&t.lookup_token, "json").await;
    let body: serde_json::Value = json_answer.json().await.unwrap();
    assert_eq!(body["id"], 4294967296_i64);
    assert_eq!(body["queue_position"], serde_json::Value::Null);
    let bad = app.text_lookup(&t.lookup_token, "xml").await;
    assert_eq!(bad.status(), 400);
    let error: serde_json::Value = bad.json().await.unwrap();
    assert_eq!(error["message"], "format must be json, text or compact");
}

#[test]
fn the_freeswitch_scripts_ask_mod_curl_to_verify_the_certificate() {
    let scripts = [
        include_str!("../../deploy/pbx/freeswitch/cidgate_lookup.lua"),
        include_str!("../../deploy/pbx/freeswitch/cidgate_call_end.lua"),
    ];
    for script in scripts {
        let requests: Vec<&str> = script
            .lines()
            .filter(|l| l.contains("connect-timeout %d"))
            .collect();
        assert_eq!(requests.len(), 1, "one curl request per script");
        assert!(
            requests[0].contains(" json secure connect-timeout %d timeout %d\""),
            "{}",
            requests[0]
        );
    }
}

/// The 3CX template's lookup URL, filled in as 3CX fills it.
fn three_cx_url(api_url: &str, number: &str) -> String {
    let template = include_str!("../../deploy/pbx/3cx/cidgate.xml");
    let url = template
        .split("Url=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    url.replace("&amp;", "&")
        .replace("[ApiUrl]", api_url)
        .replace("[Number]", number)
        .replace("[Dnid]", "")
}

#[tokio::test]
async fn the_3cx_rule_on_id_cannot_match_an_unknown_caller() {
    let app = spawn_app().await;
    let t = app.create_tenant("acme", "RO").await;
    let template = include_str!("../../deploy/pbx/3cx/cidgate.xml");
    assert!(template.contains(r#"<Rule Type="Any">id</Rule>"#));
    let ask = |number: &'static str| {
        let url = three_cx_url(&app.address, number);
        let request = app.http.get(url).bearer_auth(&t.lookup_token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    // Unknown: no `id` key at all (not a null one).
    assert_eq!(ask("0721234567").await, json!({}));

    let contact = json!({"name": "Ion Popescu", "phones": ["0721234567"]});
    let put = app.put_contact(&t.sync_token, "12345", &contact).await;
    assert!(put.status().is_success());
    let found = ask("0721234567").await;
    assert_eq!(found["id"], 12345);
    assert_eq!(found["name"], "Ion Popescu");
    assert!(found.get("direct_line").is_none(), "{found}");
}
