//! `pkinspect rules` and `pkinspect explain`.

use anyhow::Context;
use clap::{Args, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};

use pkinspect::rules::Rule;

use super::{print, EXIT_CLEAN, EXIT_ERROR};

/// Output formats of `pkinspect rules`.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ListFormat {
    /// A table.
    Human,
    /// `{"rules": [{"code", "slug", "severity", "summary", "explanation"}, ...]}`.
    Json,
}

/// Options of `pkinspect rules`.
#[derive(Args, Debug)]
pub struct ListOpts {
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: ListFormat,
}

/// Options of `pkinspect explain`.
#[derive(Args, Debug)]
pub struct ExplainOpts {
    /// A rule code (PK101) or slug (dangerous-import).
    code: String,
}

impl ListOpts {
    pub fn run(self) -> anyhow::Result<u8> {
        if let ListFormat::Json = self.format {
            let rules: Vec<serde_json::Value> = Rule::ALL
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "code": r.code(),
                        "slug": r.slug(),
                        "severity": r.default_severity(),
                        "summary": r.summary(),
                        "explanation": r.explanation(),
                    })
                })
                .collect();
            let text = serde_json::to_string_pretty(&serde_json::json!({ "rules": rules }))? + "\n";
            print(text).context("writing the rules")?;
            return Ok(EXIT_CLEAN);
        }
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(vec!["code", "slug", "severity", "summary"]);
        for r in Rule::ALL {
            t.add_row(vec![r.code(), r.slug(), r.default_severity().as_str(), r.summary()]);
        }
        print(format!("{t}\n")).context("writing the rules")?;
        Ok(EXIT_CLEAN)
    }
}

impl ExplainOpts {
    pub fn run(self) -> anyhow::Result<u8> {
        match Rule::from_code(&self.code) {
            Some(r) => {
                let text = format!(
                    "{} {} ({})\n\n{}\n\n{}\n",
                    r.code(),
                    r.slug(),
                    r.default_severity().as_str(),
                    r.summary(),
                    r.explanation()
                );
                print(text).context("writing the explanation")?;
                Ok(EXIT_CLEAN)
            }
            None => {
                eprintln!("pkinspect: unknown rule {:?}; `pkinspect rules` lists them", self.code);
                Ok(EXIT_ERROR)
            }
        }
    }
}
