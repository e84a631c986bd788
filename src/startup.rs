//! Builds the application the same way for production and tests: pools, migrations,
//! route table and listener.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use url::Url;

use crate::config::ServeSettings;
use crate::http::{self, AppState};
use crate::lookup::LookupService;
use crate::store;

pub struct Application {
    server: Server,
    port: u16,
}

impl Application {
    /// Migrates the database and binds the listener; `run_until_stopped` serves.
    pub async fn build(settings: &ServeSettings) -> anyhow::Result<Self> {
        let pool = store::connect_pool(
            settings.database.database_url.expose(),
            settings.db_pool_size.into(),
        )?;
        store::migrate(&pool).await?;
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("binding CIDGATE_LISTEN={}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let public_url = match &settings.public_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{}:{port}", settings.listen.ip()))
                .context("deriving the public URL from CIDGATE_LISTEN")?,
        };
        let state = web::Data::new(AppState {
            lookup: LookupService::new(pool.clone()),
            pool,
            public_url,
        });
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(http::configure)
                .wrap(http::security_headers())
                .wrap_fn(http::access_log)
        })
        .listen(listener)?;
        if let Some(workers) = settings.workers {
            server = server.workers(workers.into());
        }
        tracing::info!(port, "cidgate listening");
        Ok(Self {
            server: server.run(),
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM; in-flight requests finish first.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
