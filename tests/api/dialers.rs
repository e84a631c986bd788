//! The Asterisk (AMI) and FreeSWITCH (ESL) dialers against fakes that refuse what the
//! real servers refuse (issue 30 items 4, 5, 8 and 9; issue 31 item 12).

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::click2call::{Tenant, callbacks, json_of, placed, tenant};
use crate::fake_pbx::{self, EslAcl};
use crate::helpers::{PROPAGATION, TestApp, eventually, spawn_app, text_file};

const OUTBOUND: &str = "+40215550100";

impl TestApp {
    /// The Asterisk dialer of `acme` against the fake on `port`, with the secret in `file`;
    /// what the command printed on stderr.
    fn ami_dialer(&self, port: u16, file: &tempfile::NamedTempFile) -> String {
        let out = self.cli(&[
            "dialer",
            "set",
            "--tenant",
            "acme",
            "asterisk-ami",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--username",
            "cidgate",
            "--secret-file",
            file.path().to_str().unwrap(),
            "--channel",
            "PJSIP/{{AgentExtension}}",
            "--context",
            "from-internal",
            "--outbound-caller-id",
            OUTBOUND,
        ]);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "{stderr}");
        stderr
    }

    /// The FreeSWITCH dialer of `acme` against the fake on `port`.
    fn esl_dialer(&self, port: u16, file: &tempfile::NamedTempFile) {
        self.cli_ok(&[
            "dialer",
            "set",
            "--tenant",
            "acme",
            "freeswitch-esl",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--password-file",
            file.path().to_str().unwrap(),
            "--endpoint",
            "user/{{AgentExtension}}",
            "--outbound-caller-id",
            OUTBOUND,
        ]);
    }

    /// Waits until request `id` failed; its reason.
    async fn failure_of(&self, session: &str, id: i64) -> String {
        eventually(PROPAGATION, "the request's failure is recorded", || async {
            self.request_state(session, id).await["state"] == "failed"
        })
        .await;
        let state = self.request_state(session, id).await;
        state["reason"].as_str().unwrap().to_owned()
    }
}

async fn contact(app: &TestApp, t: &Tenant, name: &str) {
    let body = json!({"name": name, "phones": ["0721234567"]});
    let put = app.put_contact(&t.sync, "c1", &body).await;
    assert!(put.status().is_success(), "{}", put.text().await.unwrap());
}

#[tokio::test]
async fn the_asterisk_dialer_originates_without_events_into_an_extension_the_dialplan_routes() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let (port, mut originated) = fake_pbx::asterisk_ami().await;
    let secret = text_file("s3cret\n");
    app.ami_dialer(port, &secret);
    assert!(
        !app.cli_ok(&["dialer", "show", "--tenant", "acme"])
            .contains("s3cret")
    );
    let session = app.signed_in_with_a_contact(&t).await;

    let answer = app.click2call(&session, "0721234567", None).await;
    let (request_id, call_id) = placed(answer).await;
    assert_eq!(request_id, 1);
    let call = originated.recv().await.unwrap();
    // No event stream: the login turns events off and the originate is synchronous.
    assert_eq!(call.session, ["Events: off"]);
    assert_eq!(call.get("Async"), "");
    assert_eq!(call.get("Channel"), "PJSIP/200");
    assert_eq!(call.get("Context"), "from-internal");
    // What `_X.` matches: the national number, as a desk phone dials it.
    assert_eq!(call.get("Exten"), "0721234567");
    assert_eq!(call.get("ActionID"), "cidgate-1");
    assert_eq!(call.get("Variable"), "__CIDGATE_REQUEST_ID=1");
    // The agent sees the customer; the channel's number, which Dial() presents to the
    // customer, is the tenant's.
    assert_eq!(
        call.get("CallerID"),
        "\"Ion Popescu +40721234567\" <+40215550100>"
    );
    let channel_id = call.get("ChannelId").to_owned();
    assert!(channel_id.starts_with("cidgate-"), "{channel_id}");
    let state = app.request_state(&session, 1).await;
    assert_eq!(state["state"], "dialling_agent");
    assert_eq!(state["pbx_id"], channel_id.as_str());

    // The agent does not pick up: Asterisk's answer to the originate says so.
    call.finish.send(false).unwrap();
    assert_eq!(
        app.failure_of(&session, 1).await,
        "the agent's phone did not answer (no answer, busy or unreachable)"
    );
    assert_eq!(call.ended.await.unwrap(), "logoff");
    // The call the request opened ends with it: missed, not in progress for ever.
    eventually(PROPAGATION, "the failed request's call ends", || async {
        let cdr = app
            .http
            .get(format!("{}/api/v1/reportsCDRLogs", app.address))
            .bearer_auth(&t.report)
            .query(&[("activecallkey", call_id.as_str())])
            .send()
            .await
            .unwrap();
        json_of(cdr).await["CallList"][0]["outcome"] == "missed"
    })
    .await;

    // The agent picks up the next one: the request goes on with the PBX's events.
    let again = app.click2call(&session, "0721234567", None).await;
    assert_eq!(placed(again).await.0, 2);
    let call = originated.recv().await.unwrap();
    assert_eq!(call.get("ActionID"), "cidgate-2");
    assert_ne!(call.get("ChannelId"), channel_id, "one channel id per call");
    call.finish.send(true).unwrap();
    assert_eq!(call.ended.await.unwrap(), "logoff");
    assert_eq!(
        app.request_state(&session, 2).await["state"],
        "dialling_agent"
    );
    for callback in callbacks(2) {
        app.focalscope(&t.pbx, &callback).await;
    }

    // A wrong secret is the PBX refusing: 502, and the reason.
    let wrong = text_file("nope\n");
    app.ami_dialer(port, &wrong);
    let refused = app.click2call(&session, "0721234567", None).await;
    assert_eq!(refused.status(), 502);
    let message = json_of(refused).await["message"].clone();
    assert!(
        message.as_str().unwrap().contains("login was refused"),
        "{message}"
    );
}

#[tokio::test]
async fn an_extension_the_asterisk_dialplan_lacks_is_the_requests_failure() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let (port, _originated) = fake_pbx::asterisk_ami().await;
    let secret = text_file("s3cret\n");
    assert!(!app.ami_dialer(port, &secret).contains("warning"));
    app.cli_ok(&[
        "dialer",
        "policy",
        "--tenant",
        "acme",
        "--number-format",
        "e164",
    ]);
    // Set again under that policy: the operator is told before any click fails.
    let stderr = app.ami_dialer(port, &secret);
    assert!(
        stderr.contains("warning: the dial policy writes numbers as e164"),
        "{stderr}"
    );
    let session = app.signed_in_with_a_contact(&t).await;

    let answer = app.click2call(&session, "0721234567", None).await;
    assert_eq!(placed(answer).await.0, 1);
    assert_eq!(
        app.failure_of(&session, 1).await,
        "Asterisk refused the Originate: Extension does not exist."
    );
}

#[tokio::test]
async fn the_pbx_dialers_warn_without_the_number_the_customer_sees_and_refuse_a_bad_one() {
    let app = spawn_app().await;
    tenant(&app, "acme").await;
    let secret = text_file("s3cret\n");
    // DESIGN §9's command, as written: it works, with a warning.
    let set = |outbound: Option<&str>| {
        let mut args = vec![
            "dialer",
            "set",
            "--tenant",
            "acme",
            "asterisk-ami",
            "--host",
            "127.0.0.1",
            "--port",
            "5038",
            "--username",
            "cidgate",
            "--secret-file",
            secret.path().to_str().unwrap(),
            "--channel",
            "PJSIP/{{AgentExtension}}",
            "--context",
            "from-internal",
        ];
        if let Some(outbound) = outbound {
            args.extend(["--outbound-caller-id", outbound]);
        }
        app.cli(&args)
    };
    let without = set(None);
    let stderr = String::from_utf8(without.stderr).unwrap();
    assert!(without.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning: no --outbound-caller-id"),
        "{stderr}"
    );
    let with = set(Some("+40215550100"));
    let stderr = String::from_utf8(with.stderr).unwrap();
    assert!(with.status.success(), "{stderr}");
    assert!(!stderr.contains("--outbound-caller-id"), "{stderr}");
    let bad = set(Some("+40 21 sales"));
    assert!(!bad.status.success());
    let bad = String::from_utf8(bad.stderr).unwrap();
    assert!(
        bad.contains("--outbound-caller-id") && bad.contains("not a phone number"),
        "{bad}"
    );
}

#[tokio::test]
async fn the_freeswitch_dialer_follows_its_own_job_and_channel_and_says_exit() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let (port, mut originated) = fake_pbx::freeswitch_esl(EslAcl::Allow).await;
    let password = text_file("ClueCon\n");
    app.esl_dialer(port, &password);
    // A name ending in a backslash would escape the closing quote of its variable.
    contact(&app, &t, "Ion Pop\\").await;
    let session = app.signed_in(&t, "200", "Agent1").await;

    let answer = app.click2call(&session, "+40721234567", None).await;
    assert_eq!(placed(answer).await.0, 1);
    let call = originated.recv().await.unwrap();
    let job = call.get("Job-UUID").to_owned();
    let leg = call.get("origination_uuid").to_owned();
    assert_eq!(
        call.session,
        [
            "event plain BACKGROUND_JOB CHANNEL_EXECUTE CHANNEL_HANGUP_COMPLETE".to_owned(),
            format!("filter Job-UUID {job}"),
            format!("filter Unique-ID {leg}"),
        ]
    );
    assert_eq!(
        call.get("command"),
        format!(
            "bgapi originate {{cidgate_request_id=1,origination_uuid={leg},\
             origination_caller_id_name='Ion Pop',origination_caller_id_number=+40721234567,\
             effective_caller_id_number=+40215550100,effective_caller_id_name=+40215550100,\
             originate_timeout=30}}user/200 0721234567 XML default"
        )
    );
    assert_eq!(app.request_state(&session, 1).await["pbx_id"], leg.as_str());

    // The agent does not answer: the job's -ERR, read past another job's result.
    call.finish.send(false).unwrap();
    assert_eq!(
        app.failure_of(&session, 1).await,
        "the originate failed: NO_ANSWER"
    );
    assert_eq!(call.ended.await.unwrap(), "exit");

    // The next one is answered and routed: the request goes on with the PBX's events.
    let again = app.click2call(&session, "+40721234567", None).await;
    assert_eq!(placed(again).await.0, 2);
    let call = originated.recv().await.unwrap();
    assert_ne!(call.get("Job-UUID"), job, "one Job-UUID per job");
    let leg = call.get("origination_uuid").to_owned();
    call.finish.send(true).unwrap();
    assert_eq!(call.ended.await.unwrap(), "exit");
    let state = app.request_state(&session, 2).await;
    assert_eq!(state["state"], "dialling_agent");
    assert_eq!(state["pbx_id"], leg.as_str());
}

#[tokio::test]
async fn a_number_the_freeswitch_dialplan_does_not_route_fails_the_request() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let (port, mut originated) = fake_pbx::freeswitch_esl(EslAcl::Allow).await;
    let password = text_file("ClueCon\n");
    app.esl_dialer(port, &password);
    app.cli_ok(&[
        "dialer",
        "policy",
        "--tenant",
        "acme",
        "--number-format",
        "e164",
    ]);
    let session = app.signed_in(&t, "200", "Agent1").await;

    let answer = app.click2call(&session, "0721234567", None).await;
    assert_eq!(placed(answer).await.0, 1);
    let call = originated.recv().await.unwrap();
    assert!(call.get("command").ends_with(" +40721234567 XML default"));
    // The agent answers; the transfer finds no extension for a `+` number.
    call.finish.send(true).unwrap();
    assert_eq!(
        app.failure_of(&session, 1).await,
        "FreeSWITCH's dialplan has no route for +40721234567 in XML default (see --number-format)"
    );
}

#[tokio::test]
async fn an_event_socket_that_refuses_says_why() {
    let app = spawn_app().await;
    let t = tenant(&app, "acme").await;
    let session = app.signed_in(&t, "200", "Agent1").await;
    let message = |response: reqwest::Response| async move {
        assert_eq!(response.status(), 502);
        let body: Value = response.json().await.unwrap();
        body["message"].as_str().unwrap().to_owned()
    };

    let (port, _) = fake_pbx::freeswitch_esl(EslAcl::Deny).await;
    app.esl_dialer(port, &text_file("ClueCon\n"));
    let denied = message(app.click2call(&session, "0721234567", None).await).await;
    assert!(denied.contains("refused this address (its ACL"), "{denied}");

    let (port, _) = fake_pbx::freeswitch_esl(EslAcl::Allow).await;
    app.esl_dialer(port, &text_file("wrong\n"));
    let refused = message(app.click2call(&session, "0721234567", None).await).await;
    assert_eq!(
        refused,
        "the event socket refused the password: -ERR invalid"
    );
}

/// One block of `Name: value` lines from a raw connection.
async fn block(reader: &mut BufReader<TcpStream>) -> String {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).await.unwrap() > 0, "closed");
        if line.trim().is_empty() && !text.is_empty() {
            return text;
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
}

#[tokio::test]
async fn the_fake_asterisk_refuses_what_asterisk_refuses() {
    let (port, mut originated) = fake_pbx::asterisk_ami().await;
    let mut ami = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    let mut banner = String::new();
    ami.read_line(&mut banner).await.unwrap();
    let originate = |asynchronous: bool, exten: &str| {
        format!(
            "Action: Originate\r\nActionID: o-{exten}\r\nChannel: PJSIP/200\r\nContext: from-internal\r\n\
             Exten: {exten}\r\nPriority: 1\r\nAsync: {asynchronous}\r\n\r\n"
        )
    };
    async fn send(ami: &mut BufReader<TcpStream>, text: String) {
        ami.get_mut().write_all(text.as_bytes()).await.unwrap();
    }

    send(&mut ami, originate(true, "0721234567")).await;
    assert!(block(&mut ami).await.contains("Message: Permission denied"));
    send(
        &mut ami,
        "Action: Login\r\nActionID: l\r\nUsername: cidgate\r\nSecret: s3cret\r\nEvents: off\r\n\r\n"
            .into(),
    )
    .await;
    assert!(block(&mut ami).await.contains("Authentication accepted"));
    send(&mut ami, originate(true, "+40721234567")).await;
    assert!(
        block(&mut ami)
            .await
            .contains("Message: Extension does not exist.")
    );
    // Async with events off: queued, but its OriginateResponse never comes.
    send(&mut ami, originate(true, "0721234567")).await;
    assert!(
        block(&mut ami)
            .await
            .contains("Originate successfully queued")
    );
    originated.recv().await.unwrap().finish.send(true).unwrap();
    send(&mut ami, "Action: Logoff\r\n\r\n".into()).await;
    assert!(block(&mut ami).await.starts_with("Response: Goodbye"));
}

#[tokio::test]
async fn the_fake_event_socket_refuses_what_freeswitch_refuses() {
    let (port, mut originated) = fake_pbx::freeswitch_esl(EslAcl::Allow).await;
    let mut esl = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    assert_eq!(block(&mut esl).await, "Content-Type: auth/request\n");
    let mut send = async |text: &str| {
        esl.get_mut().write_all(text.as_bytes()).await.unwrap();
        block(&mut esl).await
    };
    let originate = "bgapi originate user/200 0721234567 XML default\n\n";
    assert!(send(originate).await.contains("-ERR command not found"));
    assert!(send("auth ClueCon\n\n").await.contains("+OK accepted"));
    let first = send(originate).await;
    originated.recv().await.unwrap().finish.send(true).unwrap();
    let second = send(originate).await;
    originated.recv().await.unwrap().finish.send(true).unwrap();
    assert!(first.contains("Reply-Text: +OK Job-UUID: "), "{first}");
    assert_ne!(first, second, "each job has its own Job-UUID");
    // Never subscribed: no BACKGROUND_JOB before the answer to `exit`.
    assert!(send("exit\n\n").await.contains("Reply-Text: +OK bye"));
}
