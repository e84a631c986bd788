//! The documented requests, run as written against a live gateway, answer as documented,
//! key order and values included (only what varies is left open: a documented string
//! holding `…` stands for any string). A doc that drifts from the product fails here.

use std::path::Path;

use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

/// A `sh` block with one `curl` command followed by the `json` block of its answer.
struct Example {
    curl: String,
    answer: String,
}

fn examples(doc: &str) -> Vec<Example> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(doc)).unwrap();
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(lang) = line.strip_prefix("```").filter(|l| !l.is_empty()) {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            blocks.push((lang.to_owned(), body.join("\n")));
        }
    }
    blocks
        .windows(2)
        .filter(|pair| pair[0].0 == "sh" && pair[0].1.starts_with("curl ") && pair[1].0 == "json")
        .map(|pair| Example {
            curl: pair[0].1.clone(),
            answer: pair[1].1.clone(),
        })
        .collect()
}

/// The words of a shell command as the shell splits them (quotes, line continuations).
fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let (mut word, mut in_word) = (String::new(), false);
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                word.extend(chars.by_ref().take_while(|c| *c != '\''));
            }
            '"' => {
                in_word = true;
                word.extend(chars.by_ref().take_while(|c| *c != '"'));
            }
            '\\' if chars.peek() == Some(&'\n') => {
                chars.next();
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// A tenant with a token of each scope the docs show (`cgl_…` is a PBX's lookup and events
/// token, as the docs' PBX examples use it).
async fn tenant(app: &TestApp, slug: &str) -> Vec<(&'static str, String)> {
    let created = app.create_tenant(slug, "RO").await;
    let mut tokens = vec![("cgs_…", created.sync_token)];
    for (shown, scopes) in [
        ("cgl_…", "lookup,events"),
        ("cgr_…", "report"),
        ("cga_…", "admin"),
    ] {
        tokens.push((shown, app.token(slug, scopes).await));
    }
    app.wait_for_directory().await;
    tokens
}

/// Runs the documented curl command against `app` with the tenant's tokens; the body.
async fn run(app: &TestApp, tokens: &[(&str, String)], curl: &str) -> String {
    let real = |word: &str| {
        let mut word = word.replace("http://127.0.0.1:8080", &app.address);
        for (shown, token) in tokens {
            word = word.replace(shown, token);
        }
        word
    };
    let words = shell_words(curl);
    let mut method = "GET".to_owned();
    let (mut url, mut headers, mut body) = (None, Vec::new(), None);
    let mut args = words.iter().skip(1).map(|w| real(w));
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-X" => method = args.next().unwrap(),
            "-H" => headers.push(args.next().unwrap()),
            "-d" | "--data" | "--data-binary" => {
                body = args.next();
                if method == "GET" {
                    method = "POST".into();
                }
            }
            other if other.starts_with("http") => url = Some(other.to_owned()),
            other => panic!("the docs' curl uses an option this test does not know: {other}"),
        }
    }
    let mut request = app
        .http
        .request(method.parse().unwrap(), url.expect("a URL"));
    for header in headers {
        let (name, value) = header.split_once(':').unwrap();
        request = request.header(name.trim(), value.trim());
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    request.send().await.unwrap().text().await.unwrap()
}

/// JSON text as a stream of tokens: strings (unescaped as written), numbers, literals and
/// punctuation, so two texts compare in order, whatever their spacing.
fn json_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '{' | '}' | '[' | ']' | ':' | ',' => tokens.push(c.to_string()),
            '"' => {
                let mut s = String::from('"');
                while let Some(c) = chars.next() {
                    s.push(c);
                    match c {
                        '\\' => s.extend(chars.next()),
                        '"' => break,
                        _ => {}
                    }
                }
                tokens.push(s);
            }
            c => {
                let mut s = c.to_string();
                while let Some(c) = chars.next_if(|c| !",:]} \n".contains(*c)) {
                    s.push(c);
                }
                tokens.push(s);
            }
        }
    }
    tokens
}

/// Why `answered` is not what `doc` documents, if it is not.
fn differs(doc: &str, documented: &str, answered: &str) -> Option<String> {
    let (want, got) = (json_tokens(documented), json_tokens(answered));
    let matches = want.len() == got.len()
        && want
            .iter()
            .zip(&got)
            .all(|(w, g)| w == g || (w.starts_with('"') && w.contains('…') && g.starts_with('"')));
    (!matches)
        .then(|| format!("{doc}: the product answers\n{answered}\nbut the doc shows\n{documented}"))
}

#[tokio::test]
async fn the_documented_requests_answer_as_documented() {
    let app = spawn_app().await;
    let readme = examples("README.md");
    let http = examples("docs/http-api.md");
    let calls = examples("docs/calls.md");
    assert_eq!(
        (readme.len(), http.len(), calls.len()),
        (2, 4, 2),
        "the examples this test runs"
    );
    let contact_42 = json!({"name": "Ion Popescu", "phones": ["0721234567"]});

    // Each example on a tenant of its own, after the set-up its doc describes.
    let cases: [(&str, &[&Example], &Example); 6] = [
        ("README.md (unknown caller)", &[], &readme[0]),
        ("README.md (create a contact)", &[], &readme[1]),
        ("docs/http-api.md (create a contact)", &[], &http[1]),
        ("docs/http-api.md (the found lookup)", &[&http[1]], &http[0]),
        ("docs/http-api.md (batch)", &[], &http[2]),
        ("docs/calls.md (events)", &[], &calls[0]),
    ];
    let mut drifted = Vec::new();
    for (i, (doc, before, example)) in cases.into_iter().enumerate() {
        let tokens = tenant(&app, &format!("docs{i}")).await;
        for step in before {
            run(&app, &tokens, &step.curl).await;
        }
        let answered = run(&app, &tokens, &example.curl).await;
        drifted.extend(differs(doc, &example.answer, &answered));
    }

    // The CDR example: the events example's call from a known contact.
    let tokens = tenant(&app, "docs-cdr").await;
    let sync = &tokens
        .iter()
        .find(|(shown, _)| *shown == "cgs_…")
        .unwrap()
        .1;
    assert_eq!(app.put_contact(sync, "42", &contact_42).await.status(), 201);
    run(&app, &tokens, &calls[0].curl).await;
    let answered = run(&app, &tokens, &calls[1].curl).await;
    drifted.extend(differs("docs/calls.md (CDR)", &calls[1].answer, &answered));
    assert!(drifted.is_empty(), "{}", drifted.join("\n\n"));
}
