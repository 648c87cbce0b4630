//! Tables for people, JSON and YAML for scripts.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

impl Format {
    pub fn parse(value: &str) -> Format {
        match value {
            "json" => Format::Json,
            "yaml" => Format::Yaml,
            _ => Format::Table,
        }
    }
}

/// Prints `value` as JSON or YAML; `false` for a table (the caller prints it).
pub fn structured(format: Format, value: &Value) -> anyhow::Result<bool> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Format::Yaml => print!("{}", serde_yaml_ng::to_string(value)?),
        Format::Table => return Ok(false),
    }
    Ok(true)
}

/// Prints rows under a header in columns, as `kubectl get` does.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let text: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    c.to_string()
                } else {
                    format!("{c:<width$}", width = widths[i])
                }
            })
            .collect();
        println!("{}", text.join("   ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// `label: value` lines with aligned values.
pub fn fields(lines: &[(&str, String)]) {
    let width = lines.iter().map(|(l, _)| l.len() + 1).max().unwrap_or(0);
    for (label, value) in lines {
        println!("{:<width$} {value}", format!("{label}:"));
    }
}
