//! Connections to PostgreSQL: encrypted when the server offers TLS, verified when the
//! URL asks (`sslmode=verify-full`, `sslrootcert`). The test cluster serves TLS with a
//! certificate from a private CA (deploy/local/pg.sh --tls).

use std::time::Duration;

use cidgate::store;
use serde_json::json;

use crate::helpers::{TestApp, TestDb, spawn_instance};

/// The database's URL asking for a server verified against the test cluster's CA.
fn verified_url(db: &TestDb) -> String {
    let ca = std::env::var("CIDGATE_TEST_DATABASE_CA")
        .expect("CIDGATE_TEST_DATABASE_CA is not set: run the tests with deploy/local/test.sh");
    format!("{}?sslmode=verify-full&sslrootcert={ca}", db.url)
}

/// Whether a connection made from `url` is encrypted, as the server sees it.
async fn encrypted(url: &str) -> anyhow::Result<bool> {
    let pool = store::connect_pool(url, 1, Duration::from_secs(5))?;
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

#[tokio::test]
async fn connections_are_encrypted_when_the_server_offers_tls() {
    let db = TestDb::create().await;
    assert!(encrypted(&db.url).await.unwrap(), "the default is prefer");
    let require = format!("{}?sslmode=require", db.url);
    assert!(encrypted(&require).await.unwrap());
    let disable = format!("{}?sslmode=disable", db.url);
    assert!(!encrypted(&disable).await.unwrap());
}

#[tokio::test]
async fn verification_accepts_the_servers_ca_and_refuses_an_unknown_issuer() {
    let db = TestDb::create().await;
    let verified = verified_url(&db);
    assert!(encrypted(&verified).await.unwrap());
    // The system's public roots did not sign the private CA's certificate.
    let public_roots = format!("{}?sslmode=verify-full", db.url);
    let refused = encrypted(&public_roots).await.unwrap_err();
    assert!(
        format!("{refused:#}").contains("UnknownIssuer"),
        "{refused:#}"
    );
}

#[tokio::test]
async fn the_gateway_serves_over_a_verified_connection() {
    let db = TestDb::create().await;
    let verified = verified_url(&db);
    let address = spawn_instance(&verified, |_| {}).await;
    let app = TestApp {
        address,
        pool: store::connect_pool(&db.url, 2, Duration::from_secs(5)).unwrap(),
        http: reqwest::Client::new(),
        db,
    };
    let acme = app.create_tenant("acme", "RO").await;
    let body = json!({"name": "Ion Popescu", "phones": ["0721234567"]});
    assert_eq!(
        app.put_contact(&acme.sync_token, "7", &body).await.status(),
        201
    );
    assert_eq!(
        app.lookup_json(&acme.lookup_token, "0721234567").await["name"],
        "Ion Popescu"
    );
    // Every connection the gateway holds (pool and listener) is encrypted.
    let client = app.pool.get().await.unwrap();
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE a.application_name = 'cidgate-listener'),
                    count(*) FILTER (WHERE NOT s.ssl)
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
             WHERE a.datname = current_database() AND a.application_name LIKE 'cidgate%'",
            &[],
        )
        .await
        .unwrap();
    let (listeners, plain): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(listeners, 1);
    assert_eq!(plain, 0, "unencrypted connections");
}
