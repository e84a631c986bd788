//! The receiver of the web-service delivery benchmark (`deploy/bench/webhooks.sh`): an
//! actix-web server answering every request `200 ok` and nothing else, as a CRM that
//! takes deliveries as fast as they come.
//!
//! ```text
//! WORKERS=1 cargo run --release --example webhook_receiver -- 127.0.0.1:18095
//! ```

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18095".to_owned());
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    eprintln!("webhook_receiver: listening on {listen} with {workers} worker(s)");
    HttpServer::new(|| {
        App::new().default_service(web::to(|_body: web::Bytes| async {
            HttpResponse::Ok().body("ok")
        }))
    })
    .workers(workers)
    .bind(listen)?
    .run()
    .await
}
