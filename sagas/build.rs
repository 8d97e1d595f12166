// `sqlx::migrate!` embeds the migrations when the crate compiles, but cargo
// does not know the macro read them: without this, a new migration alone
// (no Rust source changed) left an incremental build with the old set.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
