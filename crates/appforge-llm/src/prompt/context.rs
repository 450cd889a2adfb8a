//! The app's files as prompt context, within a byte budget.

use std::fmt::Write as _;

use crate::protocol::AppFile;

/// Writes `files` in the protocol's `===FILE:path===` form inside `<current_app>`, first fit
/// in order: a file that does not fit what is left of `budget` bytes is listed by path and
/// size instead, never cut mid-file.
pub(crate) fn render_files(files: &[AppFile], budget: usize, out: &mut String) {
    let mut left = budget;
    let mut omitted = Vec::new();
    out.push_str("<current_app>\n");
    for file in files {
        let cost = file.path.len() + file.content.len() + "===FILE:===\n\n".len();
        if cost > left {
            omitted.push(file);
            continue;
        }
        left -= cost;
        let _ = writeln!(out, "===FILE:{}===", file.path);
        out.push_str(&file.content);
        if !file.content.ends_with('\n') {
            out.push('\n');
        }
    }
    out.push_str("</current_app>\n");
    if !omitted.is_empty() {
        out.push_str(
            "<omitted_files reason=\"over the context budget; they exist and stay unchanged \
             unless you rewrite them\">\n",
        );
        for file in omitted {
            let _ = writeln!(out, "- {} ({} bytes)", file.path, file.content.len());
        }
        out.push_str("</omitted_files>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_over_the_budget_are_listed_not_cut() {
        let files = [
            AppFile::new("a.ts", "a".repeat(50)),
            AppFile::new("big.ts", "b".repeat(500)),
            AppFile::new("c.ts", "c".repeat(10)),
        ];
        let mut out = String::new();
        render_files(&files, 100, &mut out);
        assert!(out.contains(&"a".repeat(50)));
        assert!(out.contains(&"c".repeat(10)));
        assert!(!out.contains('b'.to_string().repeat(2).as_str()));
        assert!(out.contains("- big.ts (500 bytes)"));
        let mut all = String::new();
        render_files(&files, 10_000, &mut all);
        assert!(all.contains(&"b".repeat(500)) && !all.contains("omitted"));
    }
}
