// Shared OpenTelemetry setup for the Node agents of the end-to-end suite.
//
// Environment:
//   E2E_OTLP_HTTP      full OTLP/HTTP traces URL (default http://127.0.0.1:4318/v1/traces)
//   E2E_OTLP_PROTOCOL  "http/json" (JSON exporter) or "http/protobuf" (proto exporter); each agent picks a default
//   E2E_PROJECT        Phoenix project (resource attribute openinference.project.name)
import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';

export function startTracing(serviceName: string, defaultProtocol: string): NodeSDK {
  const url = process.env.E2E_OTLP_HTTP ?? 'http://127.0.0.1:4318/v1/traces';
  const protocol = process.env.E2E_OTLP_PROTOCOL ?? defaultProtocol;
  const exporter = protocol === 'http/protobuf' ? new ProtoExporter({ url }) : new JsonExporter({ url });
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      'service.name': serviceName,
      'openinference.project.name': process.env.E2E_PROJECT ?? 'default',
      'e2e.protocol': protocol,
    }),
    // One export at shutdown: a task's spans reach tollgate in one request, so the root span's
    // roll-up is deterministic (across concurrent requests it is what tollgate had seen when the
    // root passed — a documented limit, see README "Known limits").
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 60000 })],
    instrumentations: [],
  });
  sdk.start();
  return sdk;
}

export function fakeKey(script: string): string {
  return `sk-ant-fake--${script}`;
}

export function fakeBaseUrl(): string {
  return process.env.E2E_ANTHROPIC_URL ?? 'http://127.0.0.1:8080';
}
