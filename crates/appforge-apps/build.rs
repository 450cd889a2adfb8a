//! Turns on the PostgreSQL test suites (`cfg(appforge_pg)`) when `DATABASE_URL` is set at build
//! time; without it they are compiled as ignored tests with a reason, so a run says they were
//! skipped.
fn main() {
    println!("cargo::rerun-if-env-changed=DATABASE_URL");
    if std::env::var_os("DATABASE_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=appforge_pg");
    }
}
