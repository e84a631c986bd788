//! The SSRF guard and the retry rules at delivery (issue 31 item 9), through the real
//! delivery job: a name is checked when it is resolved at delivery, redirects are not
//! followed, `CIDGATE_WEBHOOK_PROXY` carries the requests (and its address passes the
//! guard), an untrusted HTTPS target is
//! refused, and `Retry-After`, 408/429/5xx (retried) and other 3xx/4xx (failed at once)
//! are obeyed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cidgate::config::ServeSettings;
use cidgate::config::webhooks::RetrySchedule;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::fairness::{finished_call, ok, post_events, tenant};
use crate::helpers::{TestApp, eventually, spawn_app_with};

/// One answer: its status and extra header lines.
type Answer = (u16, Vec<String>);

/// A raw HTTP/1.1 endpoint: answers from its script in turn (then 200) and records each
/// request line with when it arrived. Also serves as a forward proxy (it sees the
/// absolute-form request line and answers itself).
#[derive(Clone, Default)]
struct Scripted {
    script: Arc<Mutex<VecDeque<Answer>>>,
    got: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Scripted {
    async fn start(&self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let me = me.clone();
                tokio::spawn(async move { me.serve(socket).await });
            }
        });
        format!("http://{address}")
    }

    fn answer(&self, answers: &[(u16, &[&str])]) {
        let mut script = self.script.lock().unwrap();
        for (status, headers) in answers {
            script.push_back((*status, headers.iter().map(|h| (*h).to_owned()).collect()));
        }
    }

    fn requests(&self) -> Vec<(Instant, String)> {
        self.got.lock().unwrap().clone()
    }

    async fn serve(&self, socket: impl AsyncRead + AsyncWrite + Unpin) {
        let mut reader = BufReader::new(socket);
        let Some(line) = read_request(&mut reader).await else {
            return;
        };
        let arrived = Instant::now();
        let (status, headers) = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((200, Vec::new()));
        self.got.lock().unwrap().push((arrived, line));
        let mut answer = format!("HTTP/1.1 {status} Scripted\r\n");
        for header in headers {
            answer.push_str(&header);
            answer.push_str("\r\n");
        }
        answer.push_str("Content-Length: 2\r\nConnection: close\r\n\r\nok");
        let mut socket = reader.into_inner();
        let _ = socket.write_all(answer.as_bytes()).await;
        let _ = socket.shutdown().await;
    }
}

/// Reads a request's head and body; answers its request line.
async fn read_request<S: AsyncRead + Unpin>(reader: &mut BufReader<S>) -> Option<String> {
    let (mut first, mut length) = (String::new(), 0usize);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if first.is_empty() {
            first = line.to_owned();
        } else if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).await.ok()?;
    Some(first)
}

/// Deliveries retried quickly; `allow` networks may be targets.
fn deliveries(s: &mut ServeSettings, allow: &[&str]) {
    s.webhooks.client.webhook_allow_networks = allow.iter().map(|n| n.parse().unwrap()).collect();
    s.webhooks.client.webhook_timeout_ms = 2_000;
    s.webhooks.webhook_retry_schedule = RetrySchedule::parse("0s,50ms,50ms,50ms,50ms").unwrap();
}

/// Creates profile `name` of tenant acme sending to `url`, saved by a command line that
/// allows `allow` (what a gateway allowed when the profile was saved).
fn create_profile(app: &TestApp, name: &str, url: &str, allow: &str) {
    ok(std::process::Command::new(env!("CARGO_BIN_EXE_cidgate"))
        .args(["profile", "create", "--tenant", "acme", name, "--url", url])
        .env("DATABASE_URL", &app.db.url)
        .env("CIDGATE_WEBHOOK_ALLOW_NETWORKS", allow)
        .env_remove("RUST_LOG")
        .output()
        .expect("running cidgate"));
}

/// Every delivery's state and attempt count, in order.
async fn states(app: &TestApp) -> Vec<(String, i32)> {
    let client = app.pool.get().await.unwrap();
    client
        .query(
            "SELECT state, attempts FROM webhook_deliveries ORDER BY seq",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Every attempt's status and error, in order.
async fn attempts(app: &TestApp) -> Vec<(Option<i32>, Option<String>)> {
    let client = app.pool.get().await.unwrap();
    client
        .query(
            "SELECT status, error FROM webhook_attempts ORDER BY attempted_at, id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// How long the deliveries may take to reach the states a test waits for. These tests
/// assert what is sent and how each delivery ends, not how fast: five attempts with a
/// `Retry-After: 2` among them outlast `PROPAGATION` (an instance's promise for a change,
/// not for a chain of deliveries) on a loaded machine. The wait ends once they are reached.
const SETTLED: Duration = Duration::from_secs(30);

async fn wait_for_states(app: &TestApp, want: &[(&str, i32)], what: &str) {
    let want: Vec<(String, i32)> = want.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect();
    eventually(SETTLED, what, || async { states(app).await == want }).await;
}

#[tokio::test]
async fn a_name_resolving_to_an_internal_address_is_refused_at_delivery() {
    // The gateway allows no internal network: `localhost` passes no IP-literal check,
    // only the check of what the name resolves to when the request connects.
    let app = spawn_app_with(|s| deliveries(s, &[])).await;
    let receiver = Scripted::default();
    let url = receiver.start().await.replace("127.0.0.1", "localhost");
    let pbx = tenant(&app, "acme").await;
    // Saved while the name's addresses were allowed (as if it then resolved elsewhere).
    create_profile(&app, "crm", &format!("{url}/hook"), "127.0.0.0/8,::1/128");
    post_events(&app, &pbx, &finished_call("a")).await;
    wait_for_states(
        &app,
        &[("failed", 1)],
        "the delivery is refused, not retried",
    )
    .await;
    assert!(
        receiver.requests().is_empty(),
        "no request reached localhost"
    );
    let tried = attempts(&app).await;
    assert_eq!(tried.len(), 1, "{tried:?}");
    let error = tried[0].1.clone().unwrap_or_default();
    assert!(
        error.contains("refused localhost") && error.contains("internal addresses"),
        "{error}"
    );
}

#[tokio::test]
async fn redirects_are_not_followed_and_fail_the_delivery_at_once() {
    let app = spawn_app_with(|s| deliveries(s, &["127.0.0.0/8"])).await;
    let (receiver, elsewhere) = (Scripted::default(), Scripted::default());
    let elsewhere_url = elsewhere.start().await;
    let url = receiver.start().await;
    let location = format!("Location: {elsewhere_url}/moved");
    receiver.answer(&[
        (302, &[location.as_str()]),
        (301, &[location.as_str()]),
        (307, &[location.as_str()]),
        (308, &[location.as_str()]),
    ]);
    let pbx = tenant(&app, "acme").await;
    create_profile(&app, "crm", &format!("{url}/hook"), "127.0.0.0/8");
    for (n, call) in ["a", "b", "c", "d"].into_iter().enumerate() {
        post_events(&app, &pbx, &finished_call(call)).await;
        let want = vec![("failed", 1); n + 1];
        wait_for_states(&app, &want, "each redirect fails its delivery at once").await;
    }
    assert_eq!(receiver.requests().len(), 4, "each was sent once");
    assert!(elsewhere.requests().is_empty(), "no redirect was followed");
    let statuses: Vec<_> = attempts(&app).await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(statuses, [Some(302), Some(301), Some(307), Some(308)]);
}

#[tokio::test]
async fn deliveries_go_through_the_configured_proxy() {
    let proxy = Scripted::default();
    let proxy_url: url::Url = proxy.start().await.parse().unwrap();
    let app = spawn_app_with(|s| {
        deliveries(s, &["127.0.0.0/8"]);
        s.webhooks.client.webhook_proxy = Some(proxy_url);
    })
    .await;
    let pbx = tenant(&app, "acme").await;
    // A public address (TEST-NET-3) nothing answers on: only the proxy can deliver.
    create_profile(&app, "crm", "http://203.0.113.10:8080/hook", "127.0.0.0/8");
    post_events(&app, &pbx, &finished_call("a")).await;
    wait_for_states(&app, &[("delivered", 1)], "the proxy delivers it").await;
    let lines: Vec<String> = proxy.requests().into_iter().map(|(_, l)| l).collect();
    assert_eq!(lines, ["POST http://203.0.113.10:8080/hook HTTP/1.1"]);
}

#[tokio::test]
async fn a_proxy_at_an_internal_address_is_refused_unless_allowed() {
    let proxy = Scripted::default();
    let proxy_url: url::Url = proxy.start().await.parse().unwrap();
    let app = spawn_app_with(|s| {
        deliveries(s, &[]);
        s.webhooks.client.webhook_proxy = Some(proxy_url);
    })
    .await;
    let pbx = tenant(&app, "acme").await;
    create_profile(&app, "crm", "http://203.0.113.10:8080/hook", "127.0.0.0/8");
    post_events(&app, &pbx, &finished_call("a")).await;
    wait_for_states(&app, &[("failed", 1)], "the proxy's address is refused").await;
    assert!(proxy.requests().is_empty(), "nothing was sent to the proxy");
    let error = attempts(&app).await[0].1.clone().unwrap_or_default();
    assert!(error.contains("internal addresses"), "{error}");
}

/// A TLS endpoint on 127.0.0.1 with a fresh self-signed certificate for `localhost` and
/// 127.0.0.1; counts handshakes completed and requests read.
async fn self_signed_https(handshakes: Arc<Mutex<usize>>, requests: Scripted) -> String {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let dir = tempfile::tempdir().unwrap();
    let (key, cert) = (dir.path().join("key.pem"), dir.path().join("cert.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("running openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let certs = vec![CertificateDer::from_pem_file(&cert).unwrap()];
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let (acceptor, handshakes, requests) =
                (acceptor.clone(), handshakes.clone(), requests.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(socket).await {
                    *handshakes.lock().unwrap() += 1;
                    requests.serve(tls).await;
                }
            });
        }
    });
    format!("https://{address}")
}

#[tokio::test]
async fn an_https_target_with_a_self_signed_certificate_is_refused_as_untrusted() {
    let app = spawn_app_with(|s| deliveries(s, &["127.0.0.0/8"])).await;
    let (handshakes, requests) = (Arc::new(Mutex::new(0)), Scripted::default());
    let url = self_signed_https(handshakes.clone(), requests.clone()).await;
    let pbx = tenant(&app, "acme").await;
    create_profile(&app, "crm", &format!("{url}/hook"), "127.0.0.0/8");
    post_events(&app, &pbx, &finished_call("a")).await;
    // Unreachable like a network error: retried on the schedule, then failed.
    wait_for_states(&app, &[("failed", 5)], "every attempt is refused").await;
    assert_eq!(*handshakes.lock().unwrap(), 0, "no handshake was completed");
    assert!(requests.requests().is_empty(), "no request was sent");
    for (status, error) in attempts(&app).await {
        let error = error.unwrap_or_default();
        assert_eq!(status, None);
        assert!(error.contains("certificate"), "{error}");
    }
}

#[tokio::test]
async fn retry_after_408_429_and_5xx_are_retried_and_other_4xx_fail_at_once() {
    let app = spawn_app_with(|s| deliveries(s, &["127.0.0.0/8"])).await;
    let receiver = Scripted::default();
    let url = receiver.start().await;
    receiver.answer(&[
        (408, &[]),
        (429, &["Retry-After: 2"]),
        (500, &[]),
        (503, &[]),
        (200, &[]),
    ]);
    let pbx = tenant(&app, "acme").await;
    create_profile(&app, "crm", &format!("{url}/hook"), "127.0.0.0/8");
    post_events(&app, &pbx, &finished_call("a")).await;
    wait_for_states(&app, &[("delivered", 5)], "retried until the 200").await;
    let at: Vec<Instant> = receiver.requests().into_iter().map(|(at, _)| at).collect();
    assert_eq!(at.len(), 5);
    let after_429 = at[2] - at[1];
    assert!(
        after_429 >= Duration::from_millis(1_900),
        "Retry-After: 2 was honoured over the 50 ms schedule: {after_429:?}"
    );
    let statuses: Vec<_> = attempts(&app).await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        statuses,
        [Some(408), Some(429), Some(500), Some(503), Some(200)]
    );

    receiver.answer(&[(400, &[]), (401, &[]), (403, &[]), (404, &[]), (422, &[])]);
    for (n, call) in ["b", "c", "d", "e", "f"].into_iter().enumerate() {
        post_events(&app, &pbx, &finished_call(call)).await;
        let mut want = vec![("delivered", 5)];
        want.extend(vec![("failed", 1); n + 1]);
        wait_for_states(&app, &want, "a client error fails at once").await;
    }
    assert_eq!(receiver.requests().len(), 10, "no client error was retried");
}
