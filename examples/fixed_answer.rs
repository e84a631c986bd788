//! The ceiling for the lookup benchmark (`deploy/bench/run.sh`): an actix-web server
//! that answers `GET /api/lookup` with the fixed nine-key "unknown caller" JSON and
//! does nothing else, so the gateway's throughput can be compared with what the HTTP
//! stack alone manages on the same core.
//!
//! ```text
//! WORKERS=1 cargo run --release --example fixed_answer -- 127.0.0.1:18081
//! ```
//!
//! argv[1] is the listen address (default 127.0.0.1:18081); env `WORKERS` is the
//! number of HTTP worker threads (default 1).

use actix_web::{App, HttpResponse, HttpServer, http::header::ContentType, web};

const UNKNOWN_ANSWER: &str = concat!(
    r#"{"id":null,"name":null,"queue_position":null,"direct_line":null,"#,
    r#""backend_link":null,"route_identifier":null,"outbound_number":null,"#,
    r#""language":null,"external_id":null}"#
);

async fn lookup() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(UNKNOWN_ANSWER)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    let workers = match std::env::var("WORKERS") {
        Ok(v) => v.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("WORKERS must be a positive integer, got {v:?}"),
            )
        })?,
        Err(_) => 1,
    };
    eprintln!("fixed_answer: listening on {listen} with {workers} worker(s)");
    HttpServer::new(|| App::new().route("/api/lookup", web::get().to(lookup)))
        .workers(workers)
        .bind(listen)?
        .run()
        .await
}
