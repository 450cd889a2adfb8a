//! Turns on the PostgreSQL test suites (`cfg(appforge_pg)`) when `DATABASE_URL` is set at build
//! time, and the browser tests (`cfg(appforge_browser)`) when chromedriver is installed at
//! `/usr/bin/chromedriver` or named by `CHROMEDRIVER`; without them those tests are compiled as
//! ignored tests with a reason, so a run says they were skipped. Under CI (`CI` set, and not
//! `false` or `0`) the browser tests are always on: a missing browser fails them rather than
//! skipping them.
fn main() {
    println!("cargo::rerun-if-env-changed=DATABASE_URL");
    if std::env::var_os("DATABASE_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=appforge_pg");
    }
    println!("cargo::rerun-if-env-changed=CHROMEDRIVER");
    let installed = std::path::Path::new("/usr/bin/chromedriver").exists();
    // Installing chromedriver later changes the directory, which runs this script again.
    println!(
        "cargo::rerun-if-changed={}",
        if installed {
            "/usr/bin/chromedriver"
        } else {
            "/usr/bin"
        }
    );
    let named = std::env::var_os("CHROMEDRIVER").is_some_and(|path| !path.is_empty());
    println!("cargo::rerun-if-env-changed=CI");
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"));
    if named || installed || ci {
        println!("cargo::rustc-cfg=appforge_browser");
    }
}
