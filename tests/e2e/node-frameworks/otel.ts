// OpenTelemetry setup for the Vercel AI SDK 7 agent (this package's own OTel versions; node/otel.ts uses node/'s).
// One export at shutdown, as in node/otel.ts, so a task's spans reach tollgate in one request.
import { NodeSDK } from '@opentelemetry/sdk-node';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';

export function otlpUrl(): string {
  return process.env.E2E_OTLP_HTTP ?? 'http://127.0.0.1:4318/v1/traces';
}

export function startTracing(serviceName: string): NodeSDK {
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      'service.name': serviceName,
      'openinference.project.name': process.env.E2E_PROJECT ?? 'default',
    }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: otlpUrl() }), { scheduledDelayMillis: 60000 })],
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
