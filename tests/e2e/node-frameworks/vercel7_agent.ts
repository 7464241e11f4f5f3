// The Vercel AI SDK's latest major (`ai` 7 + `@ai-sdk/anthropic` 4, OpenTelemetry through `@ai-sdk/otel`).
//
// Inside a task span: a generateText tool loop (two model calls, non-streaming) and a streamText tool loop (two
// model calls, streaming). The last call of each loop writes to the 1-hour cache. Exports OTLP/HTTP protobuf.
//
// Usage: npx tsx vercel7_agent.ts TASK_ID
import { generateText, streamText, tool, stepCountIs, registerTelemetry } from 'ai';
import { OpenTelemetry } from '@ai-sdk/otel';
import { createAnthropic } from '@ai-sdk/anthropic';
import { trace } from '@opentelemetry/api';
import { z } from 'zod';
import { startTracing, fakeKey, fakeBaseUrl } from './otel.ts';

const taskId = process.argv[2] ?? 'task-vercel7';
const sdk = startTracing('e2e-vercel-ai-7-agent');
registerTelemetry(new OpenTelemetry());
const tracer = trace.getTracer('e2e.vercel7-agent', '1.0.0');
const baseURL = `${fakeBaseUrl()}/v1`;
const anthropic = createAnthropic({ apiKey: fakeKey('vercel7'), baseURL });
const anthropicStream = createAnthropic({ apiKey: fakeKey('vercel7_stream'), baseURL });
const telemetry = { isEnabled: true, functionId: 'e2e-vercel7', metadata: { taskId } };
const tools = {
  get_weather: tool({
    description: 'Weather for a city',
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => `sunny in ${city}`,
  }),
};

async function main(): Promise<void> {
  await tracer.startActiveSpan('agent.task', async (task) => {
    task.setAttribute('agent.task.id', taskId);
    task.setAttribute('agent.task_type', 'weather');
    const r = await generateText({
      model: anthropic('claude-haiku-4-5'),
      prompt: 'Weather in Rome?',
      tools,
      stopWhen: stepCountIs(3),
      telemetry,
    });
    const s = streamText({
      model: anthropicStream('claude-haiku-4-5'),
      prompt: 'Weather in Rome?',
      tools,
      stopWhen: stepCountIs(3),
      telemetry,
    });
    let streamed = '';
    for await (const chunk of s.textStream) streamed += chunk;
    await s.totalUsage;
    task.setAttribute('e2e.answer', `${r.text} | ${streamed}`);
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
