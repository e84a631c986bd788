//! `cidgate demo`: a `demo` tenant with generated contacts and a lookup to try.

use clap::Args;

use super::db::open;
use crate::config::{self, DatabaseArgs};
use crate::domain::{
    ContactInput, CrmId, PhoneNumber, Region, RoutingFields, TenantSlug, TokenScope, WriteOp,
};
use crate::store;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the gateway will listen (used in the printed curl line)
    #[arg(long, env = "CIDGATE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Base URL for the printed curl line (defaults to http://LISTEN)
    #[arg(long, env = "CIDGATE_PUBLIC_URL", value_parser = config::parse_base_url)]
    public_url: Option<url::Url>,
    #[command(flatten)]
    db: DatabaseArgs,
}

const DEMO_SLUG: &str = "demo";
const DEMO_CONTACTS: u32 = 1_000;
const FIRST_NAMES: &[&str] = &[
    "Ana", "Ion", "Maria", "Andrei", "Elena", "Mihai", "Ioana", "Radu", "Cristina", "Vlad",
];
const LAST_NAMES: &[&str] = &[
    "Popescu", "Ionescu", "Popa", "Dumitru", "Stan", "Stoica", "Gheorghe", "Matei", "Ciobanu",
    "Rusu",
];

/// The demo's n-th phone number, in national format as a Romanian PBX sends it.
fn demo_phone(n: u32) -> String {
    format!("0722{:06}", 100_000 + n)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let db = open(&args.db).await?;
    let slug = TenantSlug::parse(DEMO_SLUG).map_err(anyhow::Error::msg)?;
    let region = Region::parse("RO").map_err(anyhow::Error::msg)?;
    let token = db
        .run(async |client| {
            let tx = client.transaction().await?;
            let tenant = match store::tenants::find_by_slug(&tx, &slug).await? {
                Some(tenant) => tenant,
                None => store::tenants::create(&tx, &slug, "Demo tenant", region).await?,
            };
            store::contacts::delete_all(&tx, tenant.id).await?;
            let ops = (1..=DEMO_CONTACTS)
                .map(|n| demo_contact(n, tenant.region))
                .collect::<anyhow::Result<Vec<_>>>()?;
            store::contacts::apply(&tx, tenant.id, &ops).await?;
            store::tokens::revoke_labelled(&tx, tenant.id, "demo").await?;
            let (_, token) =
                store::tokens::create(&tx, tenant.id, TokenScope::Lookup, "demo").await?;
            tx.commit().await?;
            Ok(token)
        })
        .await?;

    let base = match args.public_url {
        Some(url) => url.to_string(),
        None => format!("http://{}", args.listen),
    };
    let base = base.trim_end_matches('/');
    println!("demo tenant `{DEMO_SLUG}` is ready with {DEMO_CONTACTS} contacts");
    println!("lookup token (shown only now): {}", token.expose());
    println!(
        "try: curl '{base}/api/lookup?telephone={}&dnid=0210000000&token={}'",
        demo_phone(42),
        token.expose()
    );
    Ok(())
}

fn demo_contact(n: u32, region: Region) -> anyhow::Result<WriteOp> {
    let first = FIRST_NAMES[n as usize % FIRST_NAMES.len()];
    let last = LAST_NAMES[(n as usize / FIRST_NAMES.len()) % LAST_NAMES.len()];
    let id = 10_000 + n;
    let phone = PhoneNumber::parse(&demo_phone(n), region)
        .map_err(|e| anyhow::anyhow!("demo number {e}"))?;
    let input = ContactInput {
        name: format!("{first} {last}"),
        phones: vec![phone],
        routing: RoutingFields {
            direct_line: n
                .is_multiple_of(5)
                .then(|| format!("SIP/{}-{}", first.to_lowercase(), last.to_lowercase())),
            queue_position: n.is_multiple_of(7).then_some((n % 101) as i16),
            language: Some(if n.is_multiple_of(3) { "en" } else { "ro" }.to_owned()),
            crm_url: Some(format!("https://crm.example.com/contacts/{id}")),
            ..RoutingFields::default()
        },
        attributes: serde_json::Map::new(),
        updated_at: None,
    };
    let id = CrmId::parse(&id.to_string()).map_err(anyhow::Error::msg)?;
    Ok(WriteOp::Upsert(id, Box::new(input)))
}
