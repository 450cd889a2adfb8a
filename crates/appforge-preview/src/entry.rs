//! Finding an app's entry module the way Vite does, or generating one that mounts the app's
//! default-exported component.

use std::collections::BTreeMap;

/// Where a build starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// An app module (`src/main.tsx`), named by `index.html` or found by convention.
    Module(String),
    /// No entry module, but a component module (`src/App.tsx`) default-exports the app: a
    /// generated entry mounts it into `#root`.
    Mount(String),
}

impl Entry {
    /// The app path of the module the build starts from or mounts.
    pub(crate) fn path(&self) -> &str {
        match self {
            Self::Module(p) | Self::Mount(p) => p,
        }
    }
}

const SCRIPT_EXTENSIONS: [&str; 4] = ["tsx", "jsx", "ts", "js"];

/// The path of the generated entry, inside the build directory (never an app path: app
/// paths cannot start with `\0` and a file named so is refused by the path checks).
pub(crate) const GENERATED_ENTRY: &str = "__appforge_entry__.jsx";

/// The entry of an app: `index.html`'s module script, else `src/main.*`, `src/index.*`,
/// `main.*`, `index.*` (`tsx`, `jsx`, `ts`, `js`), else a component module (`src/App.*`,
/// `App.*`) with a default export.
pub(crate) fn find(files: &BTreeMap<String, &[u8]>) -> Option<Entry> {
    if let Some(html) = files.get("index.html")
        && let Some(src) = module_script_src(&String::from_utf8_lossy(html))
    {
        let path = src
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .trim_start_matches("./")
            .trim_start_matches('/');
        if files.contains_key(path) {
            return Some(Entry::Module(path.to_owned()));
        }
    }
    for stem in ["src/main", "src/index", "main", "index"] {
        for ext in SCRIPT_EXTENSIONS {
            let path = format!("{stem}.{ext}");
            if files.contains_key(&path) {
                return Some(Entry::Module(path));
            }
        }
    }
    for stem in ["src/App", "App", "src/app", "app"] {
        for ext in SCRIPT_EXTENSIONS {
            let path = format!("{stem}.{ext}");
            if let Some(source) = files.get(&path)
                && has_default_export(&String::from_utf8_lossy(source))
            {
                return Some(Entry::Mount(path));
            }
        }
    }
    None
}

/// The source of the generated entry mounting `component` (an app path) into `#root` with
/// React 18's `createRoot`, creating `#root` when the page has none.
pub(crate) fn mount_source(component: &str) -> String {
    format!(
        "import {{ StrictMode, createElement }} from 'react';\n\
         import {{ createRoot }} from 'react-dom/client';\n\
         import App from './{component}';\n\
         let root = document.getElementById('root');\n\
         if (!root) {{\n  root = document.createElement('div');\n  root.id = 'root';\n  document.body.appendChild(root);\n}}\n\
         createRoot(root).render(createElement(StrictMode, null, createElement(App)));\n"
    )
}

/// The `src` of the first `<script type="module" src="...">` of a page.
pub(crate) fn module_script_src(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(start) = lower[from..].find("<script").map(|i| i + from) {
        let end = lower[start..].find('>').map(|i| i + start)?;
        let tag = &html[start..end];
        from = end;
        let attributes = parse_attributes(tag);
        let is_module = attributes
            .iter()
            .any(|(k, v)| k == "type" && v.eq_ignore_ascii_case("module"));
        if !is_module {
            continue;
        }
        if let Some((_, src)) = attributes.iter().find(|(k, _)| k == "src") {
            return Some(src.clone());
        }
    }
    None
}

/// The byte range of the `<script type="module" src=...></script>` element whose `src` is
/// `src`, to replace it by the bundle.
pub(crate) fn module_script_range(html: &str, src: &str) -> Option<std::ops::Range<usize>> {
    let lower = html.to_ascii_lowercase();
    let mut from = 0;
    while let Some(start) = lower[from..].find("<script").map(|i| i + from) {
        let end = lower[start..].find('>').map(|i| i + start)?;
        from = end;
        let attributes = parse_attributes(&html[start..end]);
        if attributes.iter().any(|(k, v)| k == "src" && v == src) {
            let close = lower[end..]
                .find("</script>")
                .map(|i| i + end + "</script>".len())?;
            return Some(start..close);
        }
    }
    None
}

/// The attributes of a start tag (`<script type="module" src="/x">` without its `>`), names
/// lowercased.
fn parse_attributes(tag: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let body = tag.trim_start_matches('<');
    let mut chars = body.char_indices().peekable();
    // Skip the tag name.
    while chars.next_if(|(_, c)| !c.is_whitespace()).is_some() {}
    loop {
        while chars
            .next_if(|(_, c)| c.is_whitespace() || *c == '/')
            .is_some()
        {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut end = start;
        while let Some((i, c)) = chars.next_if(|(_, c)| !c.is_whitespace() && *c != '=') {
            end = i + c.len_utf8();
        }
        let name = body[start..end].to_ascii_lowercase();
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '=').is_some() {
            while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
            match chars.peek().map(|(_, c)| *c) {
                Some(q @ ('"' | '\'')) => {
                    chars.next();
                    for (_, c) in chars.by_ref() {
                        if c == q {
                            break;
                        }
                        value.push(c);
                    }
                }
                _ => {
                    while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                        value.push(c);
                    }
                }
            }
        }
        if name.is_empty() {
            break;
        }
        out.push((name, value));
    }
    out
}

/// Whether a module default-exports something (a cheap textual check: the bundler reports a
/// missing export precisely).
fn has_default_export(source: &str) -> bool {
    source.contains("export default") || source.contains("as default")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files<'a>(entries: &[(&str, &'a str)]) -> BTreeMap<String, &'a [u8]> {
        entries
            .iter()
            .map(|(p, c)| ((*p).to_owned(), c.as_bytes()))
            .collect()
    }

    #[test]
    fn index_html_names_the_entry() {
        let html = r#"<html><body><script src="https://cdn.tailwindcss.com"></script>
            <script type="module" src="/src/boot.ts?v=1"></script></body></html>"#;
        let f = files(&[
            ("index.html", html),
            ("src/boot.ts", ""),
            ("src/main.tsx", ""),
        ]);
        assert_eq!(find(&f), Some(Entry::Module("src/boot.ts".into())));
        let range = module_script_range(html, "/src/boot.ts?v=1").unwrap();
        assert_eq!(
            &html[range],
            r#"<script type="module" src="/src/boot.ts?v=1"></script>"#
        );
    }

    #[test]
    fn conventions_follow_vite_then_a_component_is_mounted() {
        assert_eq!(
            find(&files(&[("src/index.jsx", ""), ("src/main.ts", "")])),
            Some(Entry::Module("src/main.ts".into()))
        );
        assert_eq!(
            find(&files(&[
                ("index.html", "<div id=root>"),
                ("src/index.js", "")
            ])),
            Some(Entry::Module("src/index.js".into()))
        );
        assert_eq!(
            find(&files(&[(
                "src/App.jsx",
                "export default function App() {}"
            )])),
            Some(Entry::Mount("src/App.jsx".into()))
        );
        assert_eq!(
            find(&files(&[(
                "App.tsx",
                "const App = () => null;\nexport default App;"
            )])),
            Some(Entry::Mount("App.tsx".into()))
        );
        assert_eq!(
            find(&files(&[("src/App.tsx", "export const App = 1;")])),
            None
        );
        assert_eq!(find(&files(&[("README.md", "")])), None);
    }

    #[test]
    fn attributes_are_read_in_any_quoting() {
        assert_eq!(
            parse_attributes("<script defer type=module src='/a.js'"),
            [
                ("defer".to_owned(), String::new()),
                ("type".to_owned(), "module".to_owned()),
                ("src".to_owned(), "/a.js".to_owned())
            ]
        );
    }
}
