//! The board as flat CSV: one row per model, plain numbers (no "±"), so a
//! spreadsheet can sort and chart it. `podium board --format csv` and the web
//! server's `/board.csv` both write this.

use crate::{Leaderboard, access_label};

/// Headers and rows of the CSV, every number unrounded; an empty cell is
/// unknown or missing.
pub fn csv_table(board: &Leaderboard) -> (Vec<String>, Vec<Vec<String>>) {
    let mut headers: Vec<String> = [
        "model_id",
        "model",
        "spec",
        "access",
        "licence",
        "provider",
        "parameters",
        "context_length",
        "average",
        "average_ci_low",
        "average_ci_high",
        "average_rank",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for column in &board.columns {
        for part in ["value", "ci_low", "ci_high", "n", "rank", "normalized"] {
            headers.push(format!("{}:{part}", column.id));
        }
    }
    headers.extend(
        [
            "output_tokens_per_s",
            "ttft_s",
            "price_in_per_mtok",
            "price_out_per_mtok",
            "blended_price_per_mtok",
            "cost_usd",
            "cost_is_lower_bound",
            "last_run",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let num = |v: Option<f64>| v.map_or_else(String::new, |v| v.to_string());
    let int = |v: Option<u64>| v.map_or_else(String::new, |v| v.to_string());
    let rows = board
        .models
        .iter()
        .map(|m| {
            let average = m.average.as_ref();
            let mut row = vec![
                m.id.to_string(),
                m.name.clone(),
                m.spec.clone(),
                access_label(m.info.access).to_string(),
                m.info.licence.clone().unwrap_or_default(),
                m.info.provider.clone().unwrap_or_default(),
                int(m.info.parameters),
                int(m.info.context_length),
                num(average.map(|a| a.value)),
                num(average.and_then(|a| a.ci95).map(|c| c.0)),
                num(average.and_then(|a| a.ci95).map(|c| c.1)),
                int(average.map(|a| a.rank as u64)),
            ];
            for cell in &m.cells {
                let cell = cell.as_ref();
                row.push(num(cell.map(|c| c.value)));
                row.push(num(cell.and_then(|c| c.ci95).map(|c| c.0)));
                row.push(num(cell.and_then(|c| c.ci95).map(|c| c.1)));
                row.push(int(cell.map(|c| c.n as u64)));
                row.push(int(cell.map(|c| c.rank as u64)));
                row.push(num(cell.and_then(|c| c.normalized)));
            }
            let speed = m.speed.as_ref();
            row.push(num(speed.and_then(|s| s.output_speed)));
            row.push(num(speed.and_then(|s| s.ttft_s)));
            row.push(num(m.info.price_in));
            row.push(num(m.info.price_out));
            row.push(num(m.info.blended_price()));
            row.push(num(m.cost.as_ref().map(|c| c.usd)));
            row.push(
                m.cost
                    .as_ref()
                    .map_or_else(String::new, |c| c.lower_bound.to_string()),
            );
            row.push(m.last_run.clone());
            row
        })
        .collect();
    (headers, rows)
}

/// The CSV text of [`csv_table`].
pub fn to_csv(board: &Leaderboard) -> Result<String, csv::Error> {
    let (headers, rows) = csv_table(board);
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&headers)?;
    for row in rows {
        writer.write_record(&row)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|err| csv::Error::from(err.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `text` with every character that could hide or rearrange what a reader
/// sees written out as `[U+XXXX]`: control characters (an ANSI escape in a
/// model name would drive the terminal), zero-width characters and
/// bidirectional controls (U+202E reverses the rest of a line). Newlines and
/// tabs stay. Model names, specs and outputs are untrusted: tables and pages
/// show them through this.
pub fn visible(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let hidden = matches!(c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}'
            | '\u{FEFF}' | '\u{061C}' | '\u{00AD}')
            || (c.is_control() && c != '\n' && c != '\t' && c != '\r');
        if hidden {
            out.push_str(&format!("[U+{:04X}]", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn hidden_and_control_characters_are_written_out() {
        assert_eq!(
            super::visible("a\u{1b}[31mred\u{202E}b\u{200B}c\td\n"),
            "a[U+001B][31mred[U+202E]b[U+200B]c\td\n"
        );
    }
}
