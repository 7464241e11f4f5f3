//! `file`: one OTLP/JSON `ExportTraceServiceRequest` per line, appended, flushed per batch.

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::transport::{Body, Outcome, Transport};
use super::ExportError;

pub(crate) struct FileTransport {
    path: PathBuf,
    file: Mutex<tokio::fs::File>,
}

impl FileTransport {
    /// Opens (creates) the file for appending.
    pub(crate) fn build(path: &Path) -> Result<Self, ExportError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| ExportError::Io(format!("cannot open {}: {e}", path.display())))?;
        Ok(Self {
            path: path.to_owned(),
            file: Mutex::new(tokio::fs::File::from_std(file)),
        })
    }
}

#[async_trait::async_trait]
impl Transport for FileTransport {
    async fn send(&self, body: Body) -> Outcome {
        let body = body.to_bytes();
        let mut line = match crate::wire::json::protobuf_to_json(&body) {
            Ok(j) => j,
            Err(e) => {
                return Outcome::Drop {
                    reason: "encode_error",
                    detail: e.to_string(),
                }
            }
        };
        line.push(b'\n');
        let mut f = self.file.lock().await;
        let r = async {
            f.write_all(&line).await?;
            f.flush().await
        }
        .await;
        match r {
            Ok(()) => Outcome::Success,
            Err(e) => Outcome::Retry {
                delay: None,
                reason: "io_error",
                detail: format!("writing {}: {e}", self.path.display()),
            },
        }
    }
}
