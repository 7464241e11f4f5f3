//! TLS for the exporters: rustls with the ring provider; webpki and system roots, plus an
//! optional `ca_file`.

use std::path::PathBuf;

use super::ExportError;

/// Installs rustls' ring provider as the process default (once; later calls do nothing).
pub(crate) fn install_crypto_provider() {
    // An error only means a provider is already installed, which is what we want.
    let _already = rustls::crypto::ring::default_provider().install_default();
}

/// The TLS options of one exporter.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsSettings {
    /// Extra CA certificates (PEM) to trust.
    pub ca_file: Option<PathBuf>,
}

impl TlsSettings {
    /// Reads the CA file, if one is configured.
    pub(crate) fn ca_pem(&self) -> Result<Option<Vec<u8>>, ExportError> {
        match &self.ca_file {
            None => Ok(None),
            Some(p) => std::fs::read(p)
                .map(Some)
                .map_err(|e| ExportError::Tls(format!("cannot read ca_file {}: {e}", p.display()))),
        }
    }
}

/// Checks the scheme of an endpoint against `insecure`: `https://` uses TLS, `http://` is plain
/// text (the scheme says so; `insecure = true` may be given to say it twice), and
/// `insecure = true` is refused with `https://`, where it would silently mean nothing.
pub(crate) fn check_scheme(url: &str, insecure: bool) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        if insecure {
            return Err(format!(
                "`insecure = true` is only allowed with http:// endpoints, not {url}"
            ));
        }
        Ok(())
    } else if lower.starts_with("http://") {
        Ok(())
    } else {
        Err(format!(
            "endpoint {url} must start with http:// or https://"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_rules() {
        assert!(check_scheme("https://a:443", false).is_ok());
        assert!(check_scheme("https://a:443", true).is_err());
        assert!(check_scheme("http://a:4317", true).is_ok());
        // The issue's own example (`endpoint = "http://tempo:4317"`) must validate.
        assert!(check_scheme("http://a:4317", false).is_ok());
        assert!(check_scheme("a:4317", false).is_err());
    }
}
