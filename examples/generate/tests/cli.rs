//! The command line as a new user runs it: offline, into a folder, then the printed commands.

use std::process::Command;

fn generate(prompt: &str, out: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_appforge-generate"))
        .arg(prompt)
        .arg("--out")
        .arg(out)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("APPFORGE_MODEL")
        .env_remove("DATABASE_URL")
        .output()
        .expect("the CLI runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_folder_holds_the_project_files_and_the_printed_commands_match_its_readme() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("habit-tracker");
    let stdout = generate("a habit tracker with streaks", &out);
    for file in [
        "package.json",
        "tsconfig.json",
        "vite.config.ts",
        ".gitignore",
        "README.md",
        "src/App.tsx",
    ] {
        assert!(
            out.join(file).is_file(),
            "{file} missing; stdout:\n{stdout}"
        );
    }
    assert!(stdout.contains("Added project files: package.json, tsconfig.json, vite.config.ts, .gitignore, README.md"), "{stdout}");
    let package: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("package.json")).unwrap()).unwrap();
    assert_eq!(package["scripts"]["dev"], "vite");
    assert_eq!(package["dependencies"]["react"], "^18.3.1");
    assert_eq!(package["devDependencies"]["vite"], "^5.4.0");

    // The commands printed under "Run it" are the README's, in order.
    let printed: Vec<&str> = stdout
        .split("Run it:")
        .nth(1)
        .expect("a Run it section")
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("npm "))
        .collect();
    assert_eq!(printed, ["npm install", "npm run dev", "npm run build"]);
    let readme = std::fs::read_to_string(out.join("README.md")).unwrap();
    let in_readme: Vec<&str> = readme.lines().filter(|l| l.starts_with("npm ")).collect();
    assert_eq!(in_readme, printed);
}

/// A provider setting that cannot be used stops the command before anything is written,
/// with status 2 and the variable's name.
#[test]
fn a_bad_provider_setting_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("app");
    let output = Command::new(env!("CARGO_BIN_EXE_appforge-generate"))
        .arg("a todo list")
        .arg("--out")
        .arg(&out)
        .env_remove("ANTHROPIC_API_KEY")
        .env("OPENAI_BASE_URL", "localhost:11434")
        .output()
        .expect("the CLI runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("OPENAI_BASE_URL"), "{stderr}");
    assert!(!out.exists());
}
