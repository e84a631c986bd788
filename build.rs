// The migrations in sql/ are embedded at compile time (refinery::embed_migrations!):
// rebuild when one is added or changed, not only when Rust code changes.
fn main() {
    println!("cargo:rerun-if-changed=sql");
}
