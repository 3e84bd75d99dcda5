//! `completion`, `man` and `version`: the tool about itself, generated from
//! the clap definitions so they never drift from the commands.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::CommandFactory;
use serde::Serialize;

use super::{Cli, EXIT_OK, Format, render};
use crate::batch::series::rfc3339;

/// Arguments of `completion`.
#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write a page per command into DIR (etcd-rescue.1,
    /// etcd-rescue-status.1, ...) instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Prints the completion script for a shell.
pub fn completion(a: &CompletionArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let mut cmd = Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "etcd-rescue", &mut buf);
    if a.shell == clap_complete::Shell::Bash {
        // clap_complete 4.6 escapes the `-` of the binary's name one way
        // where it tracks the subcommand (`etcd__rescue__subcmd__k8s`) and
        // another where it lists the subcommand's options
        // (`etcd__subcmd__rescue__subcmd__k8s`), so no subcommand's options
        // would complete: make them one name.
        let text = String::from_utf8(buf)?.replace("etcd__subcmd__rescue__", "etcd__rescue__");
        buf = text.into_bytes();
    }
    out.write_all(&buf)?;
    Ok(EXIT_OK)
}

/// Every command's page: (file name, roff).
fn pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    fn walk(cmd: &clap::Command, out: &mut Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
        // After `build`, a subcommand's display name is its path
        // (`etcd-rescue-k8s-dump`).
        let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
        out.push((format!("{name}.1"), buf));
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            walk(sub, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    let mut cmd = Cli::command();
    cmd.build();
    walk(&cmd, &mut out)?;
    Ok(out)
}

/// Prints the main man page, or writes every page into a directory.
pub fn man(a: &ManArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<i32> {
    let pages = pages()?;
    let Some(dir) = &a.out else {
        out.write_all(&pages[0].1)?;
        return Ok(EXIT_OK);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in &pages {
        let p = dir.join(name);
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    writeln!(err, "wrote {} man pages to {}", pages.len(), dir.display())?;
    Ok(EXIT_OK)
}

/// What `version` prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Version {
    version: &'static str,
    git_commit: &'static str,
    build_date: String,
    target: String,
}

/// Prints the version, commit and build date.
pub fn version(fmt: Format, out: &mut dyn Write) -> anyhow::Result<i32> {
    let v = Version {
        version: env!("CARGO_PKG_VERSION"),
        git_commit: env!("ETCD_RESCUE_GIT_COMMIT"),
        build_date: rfc3339(env!("ETCD_RESCUE_BUILD_EPOCH").parse().unwrap_or(0)),
        target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
    };
    match fmt {
        Format::Json | Format::Yaml => render::json(out, &v)?,
        Format::Lines => render::json_line(out, &v)?,
        Format::Table => writeln!(
            out,
            "etcd-rescue {}\ngit commit: {}\nbuilt: {}\ntarget: {}",
            v.version, v.git_commit, v.build_date, v.target
        )?,
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_per_command() {
        let p = pages().unwrap();
        let names: Vec<&str> = p.iter().map(|(n, _)| n.as_str()).collect();
        for n in [
            "etcd-rescue.1",
            "etcd-rescue-status.1",
            "etcd-rescue-k8s.1",
            "etcd-rescue-k8s-dump.1",
            "etcd-rescue-version.1",
        ] {
            assert!(names.contains(&n), "{n}: {names:?}");
        }
        assert!(
            p.iter()
                .all(|(_, t)| t.starts_with(b".ie") || t.starts_with(b".TH"))
        );
    }
}
