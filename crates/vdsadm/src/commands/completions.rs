//! `vdsadm completions SHELL` and `vdsadm man`: generated from the command line's definition.

use vds_model::Hresult;

use super::{Body, Printed};
use crate::cli::full_command;
use crate::error::{self, CliError, CliResult};

/// `completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> CliResult<Printed> {
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut full_command(), "vdsadm", &mut buf);
    Ok(Printed::ok(Body::Raw(buf)))
}

/// The section of every page: 8, system administration (vdsadm manages a system service's state).
const SECTION: &str = "8";

/// One page: clap_mangen's rendering of `cmd` (named `name`) in [`SECTION`], plus an EXIT STATUS
/// section from the one table.
fn page(cmd: clap::Command, name: &str) -> CliResult<Vec<u8>> {
    let io_err =
        |e: std::io::Error| CliError::with_cause(Hresult::from_io_error(&e), "man", e.to_string());
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.name(name.to_string()))
        .section(SECTION)
        .render(&mut buf)
        .map_err(io_err)?;
    buf.extend_from_slice(b".SH \"EXIT STATUS\"\n");
    for (_, code, words) in error::EXIT_CODES {
        buf.extend_from_slice(format!(".TP\n\\fB{code}\\fR\n{words}\n").as_bytes());
    }
    Ok(buf)
}

/// Every page: `vdsadm` and one per subcommand, down to the leaves (`vdsadm-list-tportals`),
/// `help` included, since every page's SUBCOMMANDS section links to it.
fn pages() -> CliResult<Vec<(String, Vec<u8>)>> {
    fn walk(cmd: &clap::Command, name: &str, out: &mut Vec<(String, Vec<u8>)>) -> CliResult<()> {
        out.push((name.to_string(), page(cmd.clone(), name)?));
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{name}-{}", sub.get_name()), out)?;
        }
        Ok(())
    }
    let mut cmd = full_command();
    cmd.build();
    let mut out = Vec::new();
    walk(&cmd, "vdsadm", &mut out)?;
    Ok(out)
}

/// `man`: the page of vdsadm on stdout, or every page written into `dir`.
pub fn man(dir: Option<&std::path::Path>) -> CliResult<Printed> {
    let all = pages()?;
    let Some(dir) = dir else {
        let main = all.into_iter().next().map(|(_, b)| b).unwrap_or_default();
        return Ok(Printed::ok(Body::Raw(main)));
    };
    let io = |path: &std::path::Path, e: std::io::Error| {
        CliError::with_cause(
            Hresult::from_io_error(&e),
            format!("man page {}", path.display()),
            e.to_string(),
        )
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut list = String::new();
    for (name, bytes) in &all {
        let path = dir.join(format!("{name}.{SECTION}"));
        std::fs::write(&path, bytes).map_err(|e| io(&path, e))?;
        list.push_str(&format!("{}\n", path.display()));
    }
    Ok(Printed::ok(Body::Text(list)))
}
