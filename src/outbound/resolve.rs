//! How the guard learns the addresses of a name: a small trait, the system's resolver in
//! production. It is part of how a client is built (never a test branch here), so a
//! test can build one whose answers change between save and connect (DNS rebinding).

use std::net::IpAddr;
use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;

/// Finds the addresses of a host name.
pub trait Resolver: Send + Sync + 'static {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>>;
}

/// The system's resolver (getaddrinfo, through tokio's blocking pool).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str) -> BoxFuture<'a, std::io::Result<Vec<IpAddr>>> {
        async move {
            let found = tokio::net::lookup_host((host, 0)).await?;
            Ok(found.map(|a| a.ip()).collect())
        }
        .boxed()
    }
}

/// The system's resolver, shared.
pub fn system() -> Arc<dyn Resolver> {
    Arc::new(SystemResolver)
}
