//! A TCP proxy between a gateway and PostgreSQL that a test can cut or stall, to play
//! a database outage without stopping the shared test cluster.

use std::net::SocketAddr;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything.
    Open,
    /// Close every connection and refuse new ones: the database is down.
    Down,
    /// Hold every connection without forwarding a byte: the database hangs.
    Stalled,
}

pub struct DbProxy {
    pub port: u16,
    mode: watch::Sender<Mode>,
}

impl DbProxy {
    /// Starts a proxy to the PostgreSQL server of `database_url`.
    pub async fn start(database_url: &str) -> Self {
        let url = url::Url::parse(database_url).unwrap();
        let upstream: SocketAddr = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
            .parse()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, _) = watch::channel(Mode::Open);
        let modes = mode.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                tokio::spawn(serve(inbound, upstream, modes.subscribe()));
            }
        });
        Self { port, mode }
    }

    /// `database_url` with its host and port replaced by this proxy's.
    pub fn url(&self, database_url: &str) -> String {
        let mut url = url::Url::parse(database_url).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

async fn serve(mut inbound: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let current = *mode.borrow_and_update();
    match current {
        Mode::Down => {}
        // Hold the connection, silent, until the mode changes; then close it.
        Mode::Stalled => {
            let _ = mode.changed().await;
        }
        Mode::Open => {
            let Ok(mut outbound) = TcpStream::connect(upstream).await else {
                return;
            };
            let next = tokio::select! {
                _ = copy_bidirectional(&mut inbound, &mut outbound) => return,
                next = mode.wait_for(|m| *m != Mode::Open) => next.map_or(Mode::Down, |m| *m),
            };
            // Stalled: keep both sockets open and silent until the next change.
            if next == Mode::Stalled {
                let _ = mode.changed().await;
            }
        }
    }
}
