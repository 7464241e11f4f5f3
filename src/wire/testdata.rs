//! Realistic LLM-agent trace requests, for the load generator, the criterion benches and tests.
//!
//! A request holds one resource and one scope with spans from a run of agent traces: per trace a
//! root task span, agent steps, tool calls and LLM calls (about a quarter of all spans). LLM spans
//! use a mix of the conventions tollgate recognises: OTel GenAI (new names), OpenInference
//! (`llm.token_count.*`) and hand-written `llm.*` attributes. Spans carry about 12 attributes each
//! and encode to about 600 bytes. Ids and numbers are random; strings come from small vocabularies,
//! so the requests compress about as well as real telemetry does.
//!
//! Generation is deterministic for a seed, so benches and tests see the same bytes every run.

use bytes::Bytes;
use prost::Message;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};

use crate::otlp::collector::trace::v1::ExportTraceServiceRequest;
use crate::otlp::common::v1::{any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue};
use crate::otlp::resource::v1::Resource;
use crate::otlp::trace::v1::{span::SpanKind, status::StatusCode, ResourceSpans, ScopeSpans};
use crate::otlp::trace::v1::{Span, Status};

/// The model most LLM spans name.
pub const MODEL: &str = "claude-sonnet-4-6";
/// The cheaper model a share of LLM spans name.
pub const SMALL_MODEL: &str = "claude-haiku-4-5";

const TASK_TYPES: &[&str] = &[
    "research-report-generation",
    "customer-support-ticket-triage",
    "pull-request-code-review",
    "quarterly-financial-summary",
    "incident-postmortem-drafting",
    "contract-clause-extraction",
];
const SERVICES: &[&str] = &["support-agent", "research-agent", "code-review-agent"];
const TOOLS: &[&str] = &[
    "web_search",
    "read_file",
    "run_sql_query",
    "fetch_url",
    "write_file",
    "vector_store_lookup",
];
const STEP_GOALS: &[&str] = &[
    "plan the next action from the conversation so far",
    "summarise the retrieved documents for the user",
    "decide which tool answers the open question",
    "check the draft answer against the sources",
    "extract the structured fields from the response",
    "ask a clarifying question about the request",
];
const TOOL_INPUTS: &[&str] = &[
    "SELECT region, sum(amount) FROM orders GROUP BY 1",
    "https://docs.example.com/api/v2/reference/traces",
    "src/pipeline/batch.rs lines 120 to 180",
    "latest pricing for the enterprise support plan",
    "reports/2026/q3/summary-draft-v4.md",
    "embedding search: cache hit ratio alerts",
];
const FINISH_REASONS: &[&str] = &["end_turn", "tool_use", "max_tokens", "stop_sequence"];

/// What a span in a generated request is, for tests and benches that need to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanRole {
    /// The root span of an agent task.
    Task,
    /// An agent step.
    Step,
    /// A tool call.
    Tool,
    /// An LLM call in OTel GenAI conventions (new names).
    LlmGenAi,
    /// An LLM call in OpenInference conventions.
    LlmOpenInference,
    /// An LLM call with hand-written `llm.*` attributes.
    LlmCustom,
}

impl SpanRole {
    /// True for the three kinds of LLM call.
    pub fn is_llm(self) -> bool {
        matches!(
            self,
            SpanRole::LlmGenAi | SpanRole::LlmOpenInference | SpanRole::LlmCustom
        )
    }
}

/// A deterministic generator of agent trace requests.
#[derive(Debug)]
pub struct TraceGen {
    rng: SmallRng,
    /// Start time of the next span, nanoseconds since the epoch.
    clock: u64,
    service: &'static str,
    /// The trace being generated, continued by the next request when one fills up.
    current: Option<TraceState>,
}

#[derive(Debug, Clone)]
struct TraceState {
    trace_id: [u8; 16],
    root_id: [u8; 8],
    step_id: [u8; 8],
    task_id: String,
    task_type: &'static str,
    user_id: String,
    session_id: String,
    /// Steps still to generate after the current one.
    steps_left: u32,
    /// Spans of the current step still to generate (LLM call and tools).
    step_spans: Vec<SpanRole>,
}

impl TraceGen {
    /// A generator whose output depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let service = SERVICES.choose(&mut rng).copied().unwrap_or("agent");
        // Some fixed day in 2026, plus a seed-dependent offset.
        let clock = 1_780_000_000_000_000_000 + rng.random_range(0..1_000_000_000_000u64);
        Self {
            rng,
            clock,
            service,
            current: None,
        }
    }

    /// A request of exactly `spans` spans (1 resource, 1 scope), with each span's role.
    pub fn request_with_roles(
        &mut self,
        spans: usize,
    ) -> (ExportTraceServiceRequest, Vec<SpanRole>) {
        let mut out = Vec::with_capacity(spans);
        let mut roles = Vec::with_capacity(spans);
        while out.len() < spans {
            let (span, role) = self.next_span();
            out.push(span);
            roles.push(role);
        }
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: self.resource_attributes(),
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "agent-runtime.tracing".into(),
                        version: "2.14.0".into(),
                        attributes: Vec::new(),
                        dropped_attributes_count: 0,
                    }),
                    spans: out,
                    schema_url: "https://opentelemetry.io/schemas/1.37.0".into(),
                }],
                schema_url: String::new(),
            }],
        };
        (request, roles)
    }

    /// A request of exactly `spans` spans.
    pub fn request(&mut self, spans: usize) -> ExportTraceServiceRequest {
        self.request_with_roles(spans).0
    }

    /// The protobuf encoding of a request of exactly `spans` spans.
    pub fn encoded(&mut self, spans: usize) -> Bytes {
        Bytes::from(self.request(spans).encode_to_vec())
    }

    fn resource_attributes(&mut self) -> Vec<KeyValue> {
        vec![
            kv_str("service.name", self.service),
            kv_str("service.version", "1.42.3"),
            kv_str("service.namespace", "agents"),
            kv_str("deployment.environment.name", "production"),
            kv_str("host.name", "agent-worker-7f9c6d5b8-x2kqz"),
            kv_str("telemetry.sdk.name", "opentelemetry"),
            kv_str("telemetry.sdk.language", "python"),
            kv_str("telemetry.sdk.version", "1.38.0"),
        ]
    }

    fn ids(&mut self) -> [u8; 8] {
        let mut id = [0u8; 8];
        self.rng.fill(&mut id);
        id[0] |= 1; // never all zero
        id
    }

    fn hex(&mut self, bytes: usize) -> String {
        let mut b = vec![0u8; bytes];
        self.rng.fill(&mut b[..]);
        hex::encode(b)
    }

    fn new_trace(&mut self) -> TraceState {
        let mut trace_id = [0u8; 16];
        self.rng.fill(&mut trace_id);
        trace_id[0] |= 1;
        let root_id = self.ids();
        let task_id = format!("task-{}", self.hex(8));
        let user_id = format!(
            "user-{:04}@customer-{}.example.com",
            self.rng.random_range(0..500),
            self.rng.random_range(0..40)
        );
        let session_id = format!("sess-{}", self.hex(10));
        TraceState {
            trace_id,
            root_id,
            step_id: root_id,
            task_id,
            task_type: TASK_TYPES.choose(&mut self.rng).copied().unwrap_or("task"),
            user_id,
            session_id,
            steps_left: self.rng.random_range(2..9),
            step_spans: Vec::new(),
        }
    }

    /// Plans the LLM and tool spans of a new step (generated after the step span).
    fn plan_step(&mut self) -> Vec<SpanRole> {
        let mut plan = Vec::new();
        let tools = self.rng.random_range(0..4);
        for _ in 0..tools {
            plan.push(SpanRole::Tool);
        }
        if self.rng.random_bool(0.9) {
            let p: f64 = self.rng.random();
            plan.push(if p < 0.5 {
                SpanRole::LlmGenAi
            } else if p < 0.8 {
                SpanRole::LlmOpenInference
            } else {
                SpanRole::LlmCustom
            });
        }
        plan // popped from the end: the LLM call comes first
    }

    fn next_span(&mut self) -> (Span, SpanRole) {
        let Some(mut t) = self.current.take() else {
            let t = self.new_trace();
            let span = self.task_span(&t);
            self.current = Some(t);
            return (span, SpanRole::Task);
        };
        let role = match t.step_spans.pop() {
            Some(role) => role,
            None if t.steps_left == 0 => {
                // The trace is done: start the next one.
                let t = self.new_trace();
                let span = self.task_span(&t);
                self.current = Some(t);
                return (span, SpanRole::Task);
            }
            None => {
                t.steps_left -= 1;
                t.step_id = self.ids();
                t.step_spans = self.plan_step();
                SpanRole::Step
            }
        };
        let span = match role {
            SpanRole::Step => self.step_span(&t),
            SpanRole::Tool => self.tool_span(&t),
            llm => self.llm_span(&t, llm),
        };
        self.current = Some(t);
        (span, role)
    }

    /// A span skeleton with times advanced by a random duration.
    fn span(
        &mut self,
        t: &TraceState,
        id: [u8; 8],
        parent: &[u8],
        name: String,
        kind: SpanKind,
        max_ms: u64,
    ) -> Span {
        let start = self.clock;
        let dur = self.rng.random_range(1_000_000..max_ms * 1_000_000);
        self.clock += self.rng.random_range(100_000..5_000_000);
        let error = self.rng.random_bool(0.02);
        Span {
            trace_id: t.trace_id.to_vec(),
            span_id: id.to_vec(),
            parent_span_id: parent.to_vec(),
            name,
            kind: kind as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: start + dur,
            status: Some(Status {
                message: if error {
                    "upstream returned an error".into()
                } else {
                    String::new()
                },
                code: if error {
                    StatusCode::Error
                } else {
                    StatusCode::Ok
                } as i32,
            }),
            flags: 0x100,
            ..Default::default()
        }
    }

    fn task_span(&mut self, t: &TraceState) -> Span {
        let mut s = self.span(
            t,
            t.root_id,
            &[],
            format!("agent.task {}", t.task_type),
            SpanKind::Server,
            120_000,
        );
        let question = *STEP_GOALS.choose(&mut self.rng).unwrap_or(&"");
        s.attributes = vec![
            kv_str("agent.task.id", &t.task_id),
            kv_str("agent.task_type", t.task_type),
            kv_str("user.id", &t.user_id),
            kv_str("session.id", &t.session_id),
            kv_str("gen_ai.operation.name", "invoke_agent"),
            kv_str("gen_ai.agent.name", self.service),
            kv_str("gen_ai.agent.id", &format!("agent-{}", &t.task_id[5..13])),
            kv_str("agent.request.summary", question),
            kv_int("agent.max_steps", 12),
            kv_str("http.route", "/v1/agents/{agent_id}/tasks"),
            kv_str("enduser.tier", "enterprise-annual-plan"),
            kv_str("agent.framework", "in-house-orchestrator/3.2"),
        ];
        s
    }

    fn step_span(&mut self, t: &TraceState) -> Span {
        let n = self.rng.random_range(1..13);
        let mut s = self.span(
            t,
            t.step_id,
            &t.root_id,
            format!("agent.step {n}"),
            SpanKind::Internal,
            20_000,
        );
        let goal = *STEP_GOALS.choose(&mut self.rng).unwrap_or(&"");
        s.attributes = vec![
            kv_str("agent.task.id", &t.task_id),
            kv_int("agent.step.index", n),
            kv_str("agent.step.goal", goal),
            kv_str("agent.step.kind", "reason-and-act"),
            kv_str("session.id", &t.session_id),
            kv_str("user.id", &t.user_id),
            kv_str("gen_ai.operation.name", "invoke_workflow"),
            kv_str("agent.memory.backend", "redis-cluster-primary"),
            kv_int("agent.memory.messages", self.rng.random_range(2..80)),
            kv_str("agent.state", "awaiting-model-response"),
            kv_bool("agent.step.retry", self.rng.random_bool(0.05)),
            kv_str("code.function.name", "agent_runtime.loop.run_step"),
        ];
        s
    }

    fn tool_span(&mut self, t: &TraceState) -> Span {
        let tool = *TOOLS.choose(&mut self.rng).unwrap_or(&"tool");
        let id = self.ids();
        let mut s = self.span(
            t,
            id,
            &t.step_id,
            format!("execute_tool {tool}"),
            SpanKind::Internal,
            3_000,
        );
        let input = *TOOL_INPUTS.choose(&mut self.rng).unwrap_or(&"");
        let call_id = format!("toolu_01{}", self.hex(11));
        s.attributes = vec![
            kv_str("gen_ai.operation.name", "execute_tool"),
            kv_str("gen_ai.tool.name", tool),
            kv_str("gen_ai.tool.call.id", &call_id),
            kv_str("gen_ai.tool.type", "function"),
            kv_str("tool.input.summary", input),
            kv_int("tool.output.bytes", self.rng.random_range(100..200_000)),
            kv_str("agent.task.id", &t.task_id),
            kv_str("session.id", &t.session_id),
            kv_str("tool.result.status", "completed-without-errors"),
            kv_int("tool.attempt", 1),
            kv_str("code.function.name", "agent_runtime.tools.dispatch"),
            kv_str("user.id", &t.user_id),
        ];
        s
    }

    fn llm_span(&mut self, t: &TraceState, role: SpanRole) -> Span {
        let model = if self.rng.random_bool(0.8) {
            MODEL
        } else {
            SMALL_MODEL
        };
        let id = self.ids();
        let cache_read = self.rng.random_range(0..60_000i64);
        let cache_write = if self.rng.random_bool(0.3) {
            self.rng.random_range(0..8_000i64)
        } else {
            0
        };
        let uncached = self.rng.random_range(50..6_000i64);
        let input = uncached + cache_read + cache_write;
        let output = self.rng.random_range(20..4_000i64);
        let finish = *FINISH_REASONS.choose(&mut self.rng).unwrap_or(&"end_turn");
        let response_id = format!("msg_01{}", self.hex(11));
        let (name, attributes) = match role {
            SpanRole::LlmGenAi => (
                format!("chat {model}"),
                vec![
                    kv_str("gen_ai.operation.name", "chat"),
                    kv_str("gen_ai.provider.name", "anthropic"),
                    kv_str("gen_ai.request.model", model),
                    kv_str("gen_ai.response.model", model),
                    kv_str("gen_ai.response.id", &response_id),
                    kv_int("gen_ai.request.max_tokens", 8192),
                    kv_int("gen_ai.usage.input_tokens", input),
                    kv_int("gen_ai.usage.output_tokens", output),
                    kv_int("gen_ai.usage.cache_read.input_tokens", cache_read),
                    kv_int("gen_ai.usage.cache_write.input_tokens", cache_write),
                    KeyValue {
                        key: "gen_ai.response.finish_reasons".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::ArrayValue(ArrayValue {
                                values: vec![str_value(finish)],
                            })),
                        }),
                        ..Default::default()
                    },
                    kv_str("gen_ai.conversation.id", &t.session_id),
                ],
            ),
            SpanRole::LlmOpenInference => (
                "Messages.create".to_string(),
                vec![
                    kv_str("openinference.span.kind", "LLM"),
                    kv_str("llm.model_name", model),
                    kv_str("llm.provider", "anthropic"),
                    kv_str("llm.system", "anthropic"),
                    kv_int("llm.token_count.prompt", input),
                    kv_int("llm.token_count.completion", output),
                    kv_int("llm.token_count.total", input + output),
                    kv_int("llm.token_count.prompt_details.cache_read", cache_read),
                    kv_int("llm.token_count.prompt_details.cache_write", cache_write),
                    kv_str(
                        "llm.invocation_parameters",
                        "{\"max_tokens\": 8192, \"temperature\": 0.2}",
                    ),
                    kv_str("session.id", &t.session_id),
                    kv_str("user.id", &t.user_id),
                ],
            ),
            _ => (
                "llm.call".to_string(),
                vec![
                    kv_str("llm.model", model),
                    kv_str("llm.vendor", "anthropic"),
                    kv_int("llm.input_tokens", uncached),
                    kv_int("llm.output_tokens", output),
                    kv_int("llm.total_tokens", input + output),
                    kv_int("llm.cache_read_input_tokens", cache_read),
                    kv_int("llm.cache_creation_input_tokens", cache_write),
                    kv_int("llm.latency_ms", self.rng.random_range(300..30_000)),
                    kv_str("llm.stop_reason", finish),
                    kv_str("llm.request_id", &response_id),
                    kv_str("agent.task.id", &t.task_id),
                    kv_str("session.id", &t.session_id),
                ],
            ),
        };
        let mut s = self.span(t, id, &t.step_id, name, SpanKind::Client, 30_000);
        s.attributes = attributes;
        s
    }
}

fn str_value(s: &str) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.to_string())),
    }
}

fn kv_str(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(str_value(value)),
        ..Default::default()
    }
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

fn kv_bool(key: &str, value: bool) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::BoolValue(value)),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
