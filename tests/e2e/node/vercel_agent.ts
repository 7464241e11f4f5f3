// Agent 4: the Vercel AI SDK (`ai` + `@ai-sdk/anthropic`) with experimental_telemetry on.
//
// Inside a task span: one generateText with a tool (two model steps: ai.generateText wraps two
// ai.generateText.doGenerate spans and an ai.toolCall span), then one streamText call (ai.streamText wrapping
// ai.streamText.doStream). Exports OTLP/HTTP protobuf by default.
//
// Usage: npx tsx vercel_agent.ts TASK_ID
import { generateText, streamText, tool, stepCountIs } from 'ai';
import { createAnthropic } from '@ai-sdk/anthropic';
import { trace } from '@opentelemetry/api';
import { z } from 'zod';
import { startTracing, fakeKey, fakeBaseUrl } from './otel.ts';

const taskId = process.argv[2] ?? 'task-vercel';
const sdk = startTracing('e2e-vercel-ai-agent', 'http/protobuf');
const tracer = trace.getTracer('e2e.vercel-agent', '1.0.0');
const baseURL = `${fakeBaseUrl()}/v1`;
const anthropic = createAnthropic({ apiKey: fakeKey('vercel'), baseURL });
const anthropicStream = createAnthropic({ apiKey: fakeKey('vercel_stream'), baseURL });
const telemetry = { isEnabled: true, functionId: 'e2e-vercel', metadata: { taskId, userId: 'user-e2e' } };

async function main(): Promise<void> {
  await tracer.startActiveSpan('agent.task', async (task) => {
    task.setAttribute('agent.task.id', taskId);
    task.setAttribute('agent.task_type', 'math');
    const r = await generateText({
      model: anthropic('claude-haiku-4-5'),
      prompt: 'What is 2 + 3? Use the add tool.',
      tools: {
        add: tool({
          description: 'Add two numbers',
          inputSchema: z.object({ a: z.number(), b: z.number() }),
          execute: async ({ a, b }) => a + b,
        }),
      },
      stopWhen: stepCountIs(3),
      experimental_telemetry: telemetry,
    });
    const s = streamText({ model: anthropicStream('claude-haiku-4-5'), prompt: 'Say something.', experimental_telemetry: telemetry });
    let streamed = '';
    for await (const chunk of s.textStream) streamed += chunk;
    await s.usage;
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
