//! One self-contained HTML page for a person to open: headings, paragraphs, tables, settings
//! as preformatted text, and plots as inline SVG — CSS in the page, nothing fetched, so it
//! opens offline and can be mailed. The markup is well-formed XML (XHTML syntax), so any XML
//! parser reads it back.

use std::fmt::Write;

use crate::data::Metric;
use crate::results::Summary;

/// The page being built.
pub struct Page {
    title: String,
    body: String,
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;max-width:1120px;margin:2em auto;padding:0 1em;color:#222;line-height:1.4}\
h1{font-size:1.6em;border-bottom:2px solid #ddd;padding-bottom:.3em}\
h2{font-size:1.3em;margin-top:1.8em;border-bottom:1px solid #eee}\
h3{font-size:1.1em;margin-top:1.4em}\
table{border-collapse:collapse;margin:.6em 0;font-variant-numeric:tabular-nums}\
th,td{padding:.25em .7em;border-bottom:1px solid #e4e4e4;text-align:right}\
th{background:#f4f4f4}\
td:first-child,th:first-child{text-align:left}\
pre{background:#f7f7f7;padding:.7em;overflow-x:auto;font-size:.85em}\
figure{margin:1em 0}\
figcaption{color:#555;font-size:.9em}\
.plots{display:flex;flex-wrap:wrap;gap:1em}\
.note{color:#666}";

impl Page {
    pub fn new(title: &str) -> Self {
        let mut page = Page {
            title: title.to_string(),
            body: String::new(),
        };
        page.heading(1, title);
        page
    }

    /// `<h1>`…`<h3>`.
    pub fn heading(&mut self, level: u8, text: &str) {
        let level = level.clamp(1, 3);
        let _ = write!(self.body, "<h{level}>{}</h{level}>\n", escape(text));
    }

    pub fn paragraph(&mut self, text: &str) {
        let _ = write!(self.body, "<p>{}</p>\n", escape(text));
    }

    /// A greyed remark (what is unfinished, where files are).
    pub fn note(&mut self, text: &str) {
        let _ = write!(self.body, "<p class=\"note\">{}</p>\n", escape(text));
    }

    /// Text shown as it is (settings as JSON or TOML).
    pub fn preformatted(&mut self, text: &str) {
        let _ = write!(self.body, "<pre>{}</pre>\n", escape(text));
    }

    pub fn table(&mut self, header: &[String], rows: &[Vec<String>]) {
        self.body.push_str("<table>\n<thead><tr>");
        for h in header {
            let _ = write!(self.body, "<th>{}</th>", escape(h));
        }
        self.body.push_str("</tr></thead>\n<tbody>\n");
        for row in rows {
            self.body.push_str("<tr>");
            for cell in row {
                let _ = write!(self.body, "<td>{}</td>", escape(cell));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</tbody>\n</table>\n");
    }

    /// A summary's level table, as `lottery report` prints it.
    pub fn level_table(&mut self, summary: &Summary) {
        let variants = super::variants(summary);
        let metric: Metric = summary.metric;
        let rows: Vec<Vec<String>> = summary
            .levels
            .iter()
            .map(|l| super::row_cells(l, &variants, metric))
            .collect();
        self.table(&super::header_cells(&variants, metric), &rows);
        if let Some(line) = super::baseline_line(summary) {
            self.note(&line);
        }
    }

    /// Plots side by side, each an SVG document (`<svg …>…</svg>`, an XML declaration before it
    /// is dropped) with its caption.
    pub fn plots(&mut self, plots: &[(String, String)]) {
        if plots.is_empty() {
            return;
        }
        self.body.push_str("<div class=\"plots\">\n");
        for (caption, svg) in plots {
            let start = svg.find("<svg").unwrap_or(0);
            let _ = write!(
                self.body,
                "<figure>{}<figcaption>{}</figcaption></figure>\n",
                svg[start..].trim_end(),
                escape(caption)
            );
        }
        self.body.push_str("</div>\n");
    }

    /// The whole document.
    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
            escape(&self.title),
            self.body
        )
    }
}

/// Text as XML character data: `&`, `<`, `>` and quotes escaped.
pub fn escape(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_svgs_go_in_whole() {
        let mut p = Page::new("a < b & c");
        p.table(&["x".into()], &[vec!["<td>".into()]]);
        p.plots(&[(
            "plot \"one\"".into(),
            "<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>\n".into(),
        )]);
        let html = p.finish();
        assert!(html.contains("<title>a &lt; b &amp; c</title>"));
        assert!(html.contains("<td>&lt;td&gt;</td>"));
        assert!(html.contains("<figure><svg xmlns=\"http://www.w3.org/2000/svg\"></svg><figcaption>plot &quot;one&quot;</figcaption>"));
        assert!(!html.contains("<?xml"));
    }
}
