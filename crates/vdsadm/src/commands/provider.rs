//! `vdsadm provider add|remove`: provider instances of a kind.

use vds_api::{ProviderAddRequest, ProviderReport};

use super::{Ctx, Printed, print_doc};
use crate::error::CliResult;
use crate::output;
use crate::progress::Bar;
use crate::remote;

/// `provider add`.
pub fn add(
    ctx: &Ctx<'_>,
    name: &str,
    kind: &str,
    settings: &toml::Table,
    no_refresh: bool,
) -> CliResult<Printed> {
    if let Some(r) = ctx.remote()? {
        let request = ProviderAddRequest {
            name: name.to_string(),
            kind: kind.to_string(),
            settings: remote::settings(settings)?,
            refresh: !no_refresh,
        };
        let report: ProviderReport =
            r.operation("POST", "/v1/providers", remote::body(&request))?;
        return print_doc(ctx.json(), &report, || {
            output::provider_report_text(&report)
        });
    }
    let rt = ctx.runtime(true)?;
    let bar = Bar::new(0, "add");
    let service = ctx.service(&rt, true, Some(&bar))?;
    let report = rt.block_on(service.add_provider(name, kind, settings.clone(), !no_refresh));
    bar.finish();
    let report = report?;
    print_doc(ctx.json(), &report, || {
        output::provider_report_text(&report)
    })
}

/// `provider remove`.
pub fn remove(ctx: &Ctx<'_>, name: &str) -> CliResult<Printed> {
    let report: ProviderReport = match ctx.remote()? {
        Some(r) => {
            let path = format!("/v1/providers/{}", vds_client::segment(name));
            r.call("DELETE", &path, None)?
        }
        None => {
            let rt = ctx.runtime(false)?;
            let service = ctx.service(&rt, false, None)?;
            rt.block_on(service.remove_provider(name))?
        }
    };
    let mut printed = print_doc(ctx.json(), &report, || {
        output::provider_report_text(&report)
    })?;
    if let Some(detail) = &report.detail {
        printed.warnings.push(format!("warning: {detail}"));
    }
    Ok(printed)
}
