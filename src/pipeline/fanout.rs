//! The fan-out from the processor chain to the exporters.

use std::sync::Arc;

use super::{Built, Fanout, MemoryPermit, Variant};
use crate::export::{ExportBatch, ExporterKind, Exporters, Queued};

/// The exporters as the pipeline's fan-out: exporters grouped by the variant of a request they
/// want (their `spans` filter, and the Langfuse extras for `kind = "langfuse"`); each variant is
/// one shared batch for its group, all of them holding the request's memory permit.
pub struct ExportFanout {
    exporters: Arc<Exporters>,
    variants: Vec<Variant>,
    /// Exporter positions per variant, in `variants` order.
    groups: Vec<Vec<usize>>,
}

impl ExportFanout {
    /// Groups `exporters` by variant.
    pub fn new(exporters: Arc<Exporters>) -> Self {
        let mut variants: Vec<Variant> = Vec::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, (kind, spans)) in exporters.routes().enumerate() {
            let v = if kind == ExporterKind::Postgres {
                Variant {
                    ledger: true,
                    ..Variant::default()
                }
            } else {
                Variant {
                    spans,
                    langfuse: kind == ExporterKind::Langfuse,
                    ledger: false,
                }
            };
            match variants.iter().position(|x| *x == v) {
                Some(g) => groups[g].push(i),
                None => {
                    variants.push(v);
                    groups.push(vec![i]);
                }
            }
        }
        Self {
            exporters,
            variants,
            groups,
        }
    }

    /// The exporters.
    pub fn exporters(&self) -> &Arc<Exporters> {
        &self.exporters
    }
}

impl Fanout for ExportFanout {
    fn variants(&self) -> Vec<Variant> {
        self.variants.clone()
    }

    fn has_room(&self, bytes: usize) -> bool {
        self.exporters.has_room(bytes)
    }

    fn ledger_keys(&self) -> Vec<String> {
        self.exporters.ledger_keys()
    }

    fn dispatch(&self, built: &mut [Option<Built>], spans: usize, permit: MemoryPermit) -> Queued {
        if let ([only], [group]) = (&mut *built, self.groups.as_slice()) {
            // One variant (the usual case): the batch owns the permit, as with no filter at all.
            return match only.take() {
                Some(b) => {
                    self.exporters
                        .count_filtered(group, spans - b.spans.min(spans));
                    let batch = ExportBatch::new(b.bytes, b.spans).with_guard(Box::new(permit));
                    self.exporters.dispatch_to(group, Arc::new(batch))
                }
                None => {
                    self.exporters.count_filtered(group, spans);
                    Queued::default()
                }
            };
        }
        let permit = Arc::new(permit);
        let mut queued = Queued::default();
        for (group, b) in self.groups.iter().zip(built.iter_mut()) {
            match b.take() {
                Some(b) => {
                    self.exporters
                        .count_filtered(group, spans - b.spans.min(spans));
                    let batch =
                        ExportBatch::new(b.bytes, b.spans).with_guard(Box::new(permit.clone()));
                    queued.merge(self.exporters.dispatch_to(group, Arc::new(batch)));
                    if queued.refused {
                        break;
                    }
                }
                None => self.exporters.count_filtered(group, spans),
            }
        }
        queued
    }
}
