// `sqlx::migrate!` embeds the migration files at compile time but does not see new ones:
// rebuild when the folder changes.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations/sqlite");
    println!("cargo:rerun-if-changed=../../migrations/postgres");
}
