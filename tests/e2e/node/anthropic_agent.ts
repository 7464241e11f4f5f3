// Agent 1: a hand-instrumented TypeScript agent on @anthropic-ai/sdk.
//
// A task span around a multi-step tool loop; per LLM call a wrapper span that sets the `llm.*` attributes from the
// response (raw Anthropic semantics: llm.input_tokens excludes cache), one span per tool run. The SDK's own spans
// stay on, so each call is described twice (wrapper + SDK span). Exports OTLP/HTTP JSON by default.
//
// Usage: npx tsx anthropic_agent.ts TASK_ID
import Anthropic from '@anthropic-ai/sdk';
import { trace, SpanStatusCode } from '@opentelemetry/api';
import { startTracing, fakeKey, fakeBaseUrl } from './otel.ts';

const taskId = process.argv[2] ?? 'task-ts';
const sdk = startTracing('e2e-ts-anthropic-agent', 'http/json');
const tracer = trace.getTracer('e2e.ts-agent', '1.0.0');
const client = new Anthropic({ apiKey: fakeKey('ts_agent'), baseURL: fakeBaseUrl(), maxRetries: 0 });
const MODEL = 'claude-sonnet-4-6';

const tools: Anthropic.Tool[] = [
  { name: 'search_docs', description: 'Search the docs', input_schema: { type: 'object', properties: { query: { type: 'string' } } } },
  { name: 'read_file', description: 'Read a file', input_schema: { type: 'object', properties: { path: { type: 'string' } } } },
];

function runTool(name: string, input: unknown): string {
  return tracer.startActiveSpan(`tool.${name}`, (span) => {
    span.setAttribute('tool.name', name);
    span.setAttribute('tool.input', JSON.stringify(input));
    span.setAttribute('tool.success', true);
    span.end();
    return `result of ${name}`;
  });
}

async function main(): Promise<void> {
  await tracer.startActiveSpan('agent.task', async (task) => {
    task.setAttribute('agent.task', 'answer a refund question');
    task.setAttribute('agent.task.id', taskId);
    task.setAttribute('agent.task_type', 'support');
    task.setAttribute('user.id', 'user-e2e');
    const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'What is the refund policy?' }];
    let step = 0;
    let toolCalls = 0;
    for (; step < 6; step++) {
      const response = await tracer.startActiveSpan('llm.call', async (span) => {
        const started = Date.now();
        span.setAttribute('agent.step_number', step + 1);
        span.setAttribute('llm.vendor', 'anthropic');
        span.setAttribute('llm.model', MODEL);
        const r = await client.messages.create({ model: MODEL, max_tokens: 1024, tools, messages });
        span.setAttribute('llm.model', r.model);
        span.setAttribute('llm.input_tokens', r.usage.input_tokens);
        span.setAttribute('llm.output_tokens', r.usage.output_tokens);
        span.setAttribute('llm.cache_read_input_tokens', r.usage.cache_read_input_tokens ?? 0);
        span.setAttribute('llm.cache_creation_input_tokens', r.usage.cache_creation_input_tokens ?? 0);
        span.setAttribute('llm.total_tokens', r.usage.input_tokens + r.usage.output_tokens);
        span.setAttribute('llm.stop_reason', r.stop_reason ?? '');
        span.setAttribute('llm.latency_ms', Date.now() - started);
        span.end();
        return r;
      });
      messages.push({ role: 'assistant', content: response.content });
      const uses = response.content.filter((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
      if (response.stop_reason !== 'tool_use' || uses.length === 0) break;
      toolCalls += uses.length;
      messages.push({
        role: 'user',
        content: uses.map((u) => ({ type: 'tool_result' as const, tool_use_id: u.id, content: runTool(u.name, u.input) })),
      });
    }
    task.setAttribute('agent.total_steps', step + 1);
    task.setAttribute('agent.tool_calls', toolCalls);
    task.setStatus({ code: SpanStatusCode.OK });
    task.end();
  });
}

main()
  .then(() => sdk.shutdown())
  .catch(async (e) => {
    console.error(e);
    await sdk.shutdown();
    process.exit(1);
  });
