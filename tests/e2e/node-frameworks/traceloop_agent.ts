// OpenLLMetry for Node (`@traceloop/node-server-sdk`) instrumenting the Anthropic SDK (0.x: the Traceloop
// instrumentation patches `Anthropic.Completions`, which SDK 1.x no longer has; hence this package apart from node/).
//
// Inside a `withWorkflow` task (Traceloop workflow span): a non-streaming tool loop (two calls) and a streaming tool
// loop (two calls, `messages.stream`). The last call of each loop writes to the 1-hour cache. Traceloop sets up
// its own tracer provider; its exporter is pointed at the suite's OTLP/HTTP protobuf endpoint.
//
// Usage: npx tsx traceloop_agent.ts TASK_ID
import * as traceloop from '@traceloop/node-server-sdk';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import * as anthropicModule from '@anthropic-ai/sdk';
import Anthropic from '@anthropic-ai/sdk';
import { trace } from '@opentelemetry/api';
import { fakeKey, fakeBaseUrl, otlpUrl } from './otel.ts';

const taskId = process.argv[2] ?? 'task-traceloop';
traceloop.initialize({
  appName: 'e2e-traceloop-node-agent',
  baseUrl: 'http://127.0.0.1:9',
  apiKey: 'unused',
  exporter: new OTLPTraceExporter({ url: otlpUrl() }),
  disableBatch: false,
  traceloopSyncEnabled: false,
  instrumentModules: { anthropic: anthropicModule },
});

const tools = [{ name: 'get_weather', description: 'Weather for a city',
  input_schema: { type: 'object' as const, properties: { city: { type: 'string' } } } }];

async function loop(client: Anthropic, stream: boolean): Promise<string> {
  const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Weather in Rome?' }];
  for (let step = 0; step < 4; step++) {
    const params = { model: 'claude-haiku-4-5', max_tokens: 512, tools, messages };
    const r = stream ? await client.messages.stream(params).finalMessage() : await client.messages.create(params);
    messages.push({ role: 'assistant', content: r.content });
    const uses = r.content.filter((b) => b.type === 'tool_use');
    if (r.stop_reason !== 'tool_use' || uses.length === 0) {
      return r.content.map((b) => (b.type === 'text' ? b.text : '')).join('');
    }
    messages.push({ role: 'user', content: uses.map((u) => ({ type: 'tool_result' as const, tool_use_id: u.id, content: 'sunny' })) });
  }
  return '';
}

async function main(): Promise<void> {
  const base = fakeBaseUrl();
  const client = new Anthropic({ apiKey: fakeKey('traceloop_node'), baseURL: base, maxRetries: 0 });
  const streamer = new Anthropic({ apiKey: fakeKey('traceloop_node_stream'), baseURL: base, maxRetries: 0 });
  await traceloop.withWorkflow({ name: 'agent.task' }, async () => {
    const span = trace.getActiveSpan();
    span?.setAttribute('agent.task.id', taskId);
    span?.setAttribute('agent.task_type', 'weather');
    await loop(client, false);
    await loop(streamer, true);
  });
  await traceloop.forceFlush();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
