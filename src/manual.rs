//! `outagecast completions SHELL` and `outagecast man`: generated from the same clap
//! definition the binary parses with (`clap_complete`, `clap_mangen`), so they cannot drift
//! from the flags.

use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::Cli;

/// A completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "outagecast", &mut out);
    write(&out)
}

/// The manual page (roff) on stdout: the command, its global flags and one section per
/// subcommand with its flags.
pub fn man() -> Result<()> {
    let command = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut out)
        .context("man: cannot render the page")?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        page_section(&mut out, &format!("outagecast {}", sub.get_name()), sub)?;
    }
    write(&out)
}

/// One subcommand and its own subcommands as man sections, each with its usage and flags.
fn page_section(out: &mut Vec<u8>, path: &str, command: &clap::Command) -> Result<()> {
    let mut children = command
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .peekable();
    if children.peek().is_none() {
        let mut command = command.clone().bin_name(path.to_string());
        writeln!(out, ".SH \"{}\"", path.to_uppercase())?;
        let man = clap_mangen::Man::new(command.clone());
        if let Some(about) = command.get_about() {
            writeln!(out, "{about}")?;
        }
        writeln!(out, ".PP")?;
        writeln!(
            out,
            "{}",
            command.render_usage().to_string().replace('-', "\\-")
        )?;
        man.render_options_section(out)
            .context("man: cannot render a section")?;
        return Ok(());
    }
    for child in children {
        page_section(out, &format!("{path} {}", child.get_name()), child)?;
    }
    Ok(())
}

fn write(bytes: &[u8]) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()?;
    Ok(())
}
