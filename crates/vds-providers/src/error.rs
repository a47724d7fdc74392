//! The error of building a provider. Failures while talking to arrays are not errors of this
//! crate: they become object statuses and details in the snapshots a provider returns.

use vds_model::Hresult;

/// Why a provider could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The configuration is unusable; the message names the subsystem and what is wrong.
    #[error("invalid provider configuration: {0}")]
    InvalidConfig(String),
    /// The provider's runtime (its threads) could not be started.
    #[error("cannot start the provider runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

impl ProviderError {
    /// The HRESULT for this error: `E_INVALIDARG` for a bad configuration, the Win32 form of the
    /// system error for the runtime.
    pub fn hresult(&self) -> Hresult {
        match self {
            ProviderError::InvalidConfig(_) => Hresult::E_INVALIDARG,
            ProviderError::Runtime(e) => Hresult::from_io_error(e),
        }
    }
}
