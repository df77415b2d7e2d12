//! Tables for the terminal: aligned text, Markdown, CSV or JSON from one
//! list of rows.

use crate::args::Format;

pub(crate) struct Table {
    pub(crate) headers: Vec<String>,
    /// Right-align these columns (numbers).
    pub(crate) numeric: Vec<bool>,
    pub(crate) rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(headers: &[(&'static str, bool)]) -> Table {
        Table {
            headers: headers.iter().map(|(h, _)| h.to_string()).collect(),
            numeric: headers.iter().map(|(_, n)| *n).collect(),
            rows: Vec::new(),
        }
    }

    /// A table whose headers are known only at run time (the board's columns).
    pub(crate) fn with_headers(headers: Vec<(String, bool)>) -> Table {
        Table {
            numeric: headers.iter().map(|(_, n)| *n).collect(),
            headers: headers.into_iter().map(|(h, _)| h).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub(crate) fn render(&self, format: Format) -> anyhow::Result<String> {
        Ok(match format {
            Format::Table => self.text(),
            Format::Markdown => self.markdown(),
            Format::Csv => self.csv()?,
            Format::Json => self.json(),
        })
    }

    fn widths(&self) -> Vec<usize> {
        self.headers
            .iter()
            .enumerate()
            .map(|(i, h)| {
                self.rows
                    .iter()
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .max()
                    .unwrap_or(0)
                    .max(h.chars().count())
            })
            .collect()
    }

    fn pad(&self, i: usize, cell: &str, width: usize) -> String {
        let fill = width.saturating_sub(cell.chars().count());
        if self.numeric[i] {
            format!("{}{cell}", " ".repeat(fill))
        } else {
            format!("{cell}{}", " ".repeat(fill))
        }
    }

    fn text(&self) -> String {
        let widths = self.widths();
        let mut out = String::new();
        let line = |cells: Vec<String>| cells.join("  ").trim_end().to_string() + "\n";
        out.push_str(&line(
            self.headers
                .iter()
                .enumerate()
                .map(|(i, h)| self.pad(i, h, widths[i]))
                .collect(),
        ));
        out.push_str(&line(widths.iter().map(|w| "-".repeat(*w)).collect()));
        for row in &self.rows {
            out.push_str(&line(
                row.iter()
                    .enumerate()
                    .map(|(i, c)| self.pad(i, c, widths[i]))
                    .collect(),
            ));
        }
        out
    }

    fn markdown(&self) -> String {
        let escape = |s: &str| s.replace('|', "\\|");
        let mut out = format!(
            "| {} |\n|{}|\n",
            self.headers.join(" | "),
            self.numeric
                .iter()
                .map(|n| if *n { " ---: " } else { " --- " })
                .collect::<Vec<_>>()
                .join("|")
        );
        for row in &self.rows {
            out.push_str(&format!(
                "| {} |\n",
                row.iter()
                    .map(|c| escape(c))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
        out
    }

    fn csv(&self) -> anyhow::Result<String> {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&self.headers)?;
        for row in &self.rows {
            writer.write_record(row)?;
        }
        Ok(String::from_utf8(writer.into_inner()?)?)
    }

    fn json(&self) -> String {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|row| {
                serde_json::Value::Object(
                    self.headers
                        .iter()
                        .zip(row)
                        .enumerate()
                        .map(|(i, (h, c))| {
                            let value = if self.numeric[i] {
                                c.parse::<f64>()
                                    .ok()
                                    .and_then(serde_json::Number::from_f64)
                                    .map(serde_json::Value::Number)
                                    .unwrap_or(serde_json::Value::Null)
                            } else {
                                serde_json::Value::String(c.clone())
                            };
                            (h.to_string(), value)
                        })
                        .collect(),
                )
            })
            .collect();
        serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&[("model", false), ("acc", true)]);
        t.push(vec!["mock:a".into(), "0.5000".into()]);
        t.push(vec!["m|b".into(), "".into()]);
        t
    }

    #[test]
    fn renders_every_format() {
        let t = sample();
        assert_eq!(
            t.render(Format::Table).unwrap(),
            "model      acc\n------  ------\nmock:a  0.5000\nm|b\n"
        );
        assert_eq!(
            t.render(Format::Markdown).unwrap(),
            "| model | acc |\n| --- | ---: |\n| mock:a | 0.5000 |\n| m\\|b |  |\n"
        );
        assert_eq!(
            t.render(Format::Csv).unwrap(),
            "model,acc\nmock:a,0.5000\nm|b,\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&t.render(Format::Json).unwrap()).unwrap();
        assert_eq!(json[0]["acc"], 0.5);
        assert_eq!(json[1]["acc"], serde_json::Value::Null);
    }
}
