//! The preview document: the app's `index.html` with the bundle in place of its module
//! script, and the error overlay shown instead when the app does not build.

use crate::entry;
use crate::error::BuildError;

/// Reports runtime errors to the parent frame. The message carries no data of the parent: the
/// preview runs in a sandboxed frame of its own origin and cannot read the product's.
const ERROR_REPORTER: &str = r"<script>
(function () {
  function report(message, stack) {
    try {
      parent.postMessage({ type: 'appforge:preview-error', message: String(message), stack: stack ? String(stack) : '' }, '*');
    } catch (_) {}
  }
  window.addEventListener('error', function (e) { report(e.message, e.error && e.error.stack); });
  window.addEventListener('unhandledrejection', function (e) {
    var r = e.reason;
    report(r && r.message ? r.message : r, r && r.stack);
  });
})();
</script>";

/// Gives the app a storage of its own. A preview runs sandboxed without `allow-same-origin`,
/// in an opaque origin where reading `localStorage` or `sessionStorage` throws, and apps often
/// keep their state there: each gets an in-memory `Storage` for the life of the page instead.
/// The product's storage stays out of reach either way.
const STORAGE_SHIM: &str = r"<script>
(function () {
  function memory() {
    var items = new Map();
    return {
      getItem: function (k) { k = String(k); return items.has(k) ? items.get(k) : null; },
      setItem: function (k, v) { items.set(String(k), String(v)); },
      removeItem: function (k) { items.delete(String(k)); },
      clear: function () { items.clear(); },
      key: function (i) { var keys = Array.from(items.keys()); return i < keys.length ? keys[i] : null; },
      get length() { return items.size; }
    };
  }
  ['localStorage', 'sessionStorage'].forEach(function (name) {
    try { window[name].length; } catch (_) {
      try { Object.defineProperty(window, name, { value: memory(), configurable: true }); } catch (_) {}
    }
  });
})();
</script>";

/// The page a bundle goes into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    page: String,
    /// The `src` of the module script the bundle replaces, when the page names one.
    script_src: Option<String>,
}

const DEFAULT_PAGE: &str = "<!doctype html>\n<html lang=\"en\">\n  <head>\n    <meta charset=\"UTF-8\" />\n    <meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0\" />\n    <title>Preview</title>\n  </head>\n  <body>\n    <div id=\"root\"></div>\n  </body>\n</html>\n";

impl Template {
    pub(crate) fn new(page: Option<String>, script_src: Option<String>) -> Self {
        Self {
            page: page.unwrap_or_else(|| DEFAULT_PAGE.to_owned()),
            script_src,
        }
    }

    pub(crate) fn render_inline(&self, js: &str, css: &str) -> String {
        let style = if css.is_empty() {
            String::new()
        } else {
            format!("<style>\n{}\n</style>\n", escape_raw_text(css, "style"))
        };
        let script = format!(
            "<script type=\"module\">\n{}\n</script>",
            escape_raw_text(js, "script")
        );
        self.render(&style, &script)
    }

    pub(crate) fn render_linked(&self, js_url: &str, css_url: &str) -> String {
        let style = format!(
            "<link rel=\"stylesheet\" href=\"{}\" />\n",
            escape_attribute(css_url)
        );
        let script = format!(
            "<script type=\"module\" src=\"{}\"></script>",
            escape_attribute(js_url)
        );
        self.render(&style, &script)
    }

    fn render(&self, style: &str, script: &str) -> String {
        let mut page = self.page.clone();
        // The bundle replaces the module script, where the page had it; otherwise it ends
        // the body.
        match self
            .script_src
            .as_deref()
            .and_then(|src| entry::module_script_range(&page, src))
        {
            Some(range) => page.replace_range(range, script),
            None => insert_before(&mut page, "</body>", &format!("{script}\n")),
        }
        insert_before(
            &mut page,
            "</head>",
            &format!("{ERROR_REPORTER}\n{STORAGE_SHIM}\n{style}"),
        );
        page
    }
}

/// Inserts `text` before the last `tag` (case-insensitive), or at the end.
fn insert_before(page: &mut String, tag: &str, text: &str) {
    match page.to_ascii_lowercase().rfind(tag) {
        Some(i) => page.insert_str(i, text),
        None => page.push_str(text),
    }
}

/// Text inside `<script>` or `<style>` cannot contain its end tag: `</script` becomes
/// `<\/script` (the same string in JavaScript; in CSS the sequence only occurs in strings
/// and comments, where the escape is harmless).
fn escape_raw_text(text: &str, element: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let needle = format!("</{element}");
    let lower = text.to_ascii_lowercase();
    let mut last = 0;
    for (i, _) in lower.match_indices(&needle) {
        out.push_str(&text[last..i]);
        out.push_str("<\\/");
        last = i + 2;
    }
    out.push_str(&text[last..]);
    out.replace("<!--", "<\\!--")
}

/// Escapes text for an HTML attribute value or element content.
pub(crate) fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The document shown instead of the app when it does not build: the error, its place and
/// the lines around it, and the same error posted to the parent frame. `source` is the text
/// of the file the error is about, when known.
#[must_use]
pub fn overlay_html(error: &BuildError, source: Option<&str>) -> String {
    let place = if error.file.is_empty() {
        String::new()
    } else if error.line > 0 {
        format!("{}:{}:{}", error.file, error.line, error.column)
    } else {
        error.file.clone()
    };
    let frame = source
        .filter(|_| error.line > 0)
        .map(|s| code_frame(s, error.line, error.column))
        .unwrap_or_default();
    let payload = serde_json::json!({
        "type": "appforge:preview-build-error",
        "error": error,
    });
    // JSON in a script: `<` escaped so no text of the error can end the element.
    let payload = payload.to_string().replace('<', "\\u003c");
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"UTF-8\" />\n<title>Build error</title>\n<style>\n\
body {{ margin: 0; font: 14px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; background: #1e1e2e; color: #f5f5f5; }}\n\
.overlay {{ padding: 24px; }}\n\
h1 {{ font-size: 16px; color: #ff6b81; margin: 0 0 8px; }}\n\
.place {{ color: #9ecbff; margin-bottom: 12px; }}\n\
pre {{ background: #11111b; padding: 12px; border-radius: 6px; overflow: auto; white-space: pre-wrap; }}\n\
.marker {{ color: #ff6b81; }}\n\
</style>\n</head>\n<body>\n<div class=\"overlay\" role=\"alert\" data-file=\"{file}\" data-line=\"{line}\" data-column=\"{column}\">\n\
<h1>Build error</h1>\n<div class=\"place\">{place}</div>\n<pre class=\"message\">{message}</pre>\n{frame}</div>\n\
<script>try {{ parent.postMessage({payload}, '*'); }} catch (_) {{}}</script>\n</body>\n</html>\n",
        file = escape_attribute(&error.file),
        line = error.line,
        column = error.column,
        place = escape_attribute(&place),
        message = escape_attribute(&error.message),
    )
}

/// Two lines either side of `line`, numbered, with a caret under `column`.
fn code_frame(source: &str, line: u32, column: u32) -> String {
    let line = usize::try_from(line).unwrap_or(usize::MAX);
    let first = line.saturating_sub(3);
    let width = (line + 2).to_string().len();
    let mut out = String::from("<pre class=\"frame\">");
    for (i, text) in source.lines().enumerate().skip(first).take(5) {
        let n = i + 1;
        let mark = if n == line { "&gt;" } else { " " };
        out.push_str(&format!(
            "{mark} {n:>width$} | {}\n",
            escape_attribute(text)
        ));
        if n == line {
            let pad = usize::try_from(column.saturating_sub(1)).unwrap_or(0);
            out.push_str(&format!(
                "  {:>width$} | {}<span class=\"marker\">^</span>\n",
                "",
                " ".repeat(pad)
            ));
        }
    }
    out.push_str("</pre>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::BuildErrorKind;

    #[test]
    fn the_bundle_replaces_the_module_script() {
        let page = "<html><head><title>t</title></head><body><div id=\"root\"></div>\
                    <script type=\"module\" src=\"/src/main.tsx\"></script></body></html>";
        let t = Template::new(Some(page.to_owned()), Some("/src/main.tsx".to_owned()));
        let html = t.render_inline("console.log('</script>')", "a { color: red }");
        assert!(!html.contains("src=\"/src/main.tsx\""));
        assert!(html.contains("console.log('<\\/script>')"));
        assert!(html.contains("<style>\na { color: red }\n</style>"));
        assert!(html.find("appforge:preview-error").unwrap() < html.find("</head>").unwrap());
        // The storage stand-in comes before the app's script runs.
        let shim = html.find("Object.defineProperty(window, name").unwrap();
        assert!(shim < html.find("console.log").unwrap());
        let linked = t.render_linked("/a.js", "/a.css");
        assert!(linked.contains("<script type=\"module\" src=\"/a.js\"></script></body>"));
        assert!(linked.contains("<link rel=\"stylesheet\" href=\"/a.css\" />"));
    }

    #[test]
    fn the_overlay_names_the_place_and_escapes_the_message() {
        let error = BuildError::new(BuildErrorKind::Syntax, "Unexpected token <script>").at(
            "src/App.tsx",
            2,
            19,
        );
        let html = overlay_html(&error, Some("a\n  return <div>{1 +}</div>;\nb\n"));
        assert!(html.contains("src/App.tsx:2:19"));
        assert!(html.contains("data-line=\"2\""));
        assert!(html.contains("Unexpected token &lt;script&gt;"));
        assert!(!html.contains("<script>\"") && !html.contains("token <script>"));
        assert!(html.contains("&gt; 2 |   return &lt;div&gt;{1 +}&lt;/div&gt;;"));
        assert!(html.contains("\\u003cscript"));
    }
}
