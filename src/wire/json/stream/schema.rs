//! The schema: OTLP trace messages, their fields, numbers and JSON types.

use super::*;

#[derive(Clone, Copy)]
pub(super) enum Kind {
    /// `string`.
    Str,
    /// `bytes` written as hex (trace and span ids).
    HexId,
    /// `fixed64` (timestamps).
    Fixed64,
    /// `fixed32` (flags).
    Fixed32,
    /// `uint32` (dropped counts).
    U32,
    /// `int32`.
    I32,
    /// An enum, by number or by one of these names (index = number).
    Enum(&'static [&'static str]),
    /// An optional message.
    Message(&'static MsgDef),
    /// A repeated message.
    Repeated(&'static MsgDef),
    /// A repeated string.
    RepeatedStr,
    /// An optional `AnyValue`.
    AnyValue,
    /// A repeated `AnyValue`.
    RepeatedAnyValue,
}

pub(super) struct FieldDef {
    pub(super) json: &'static str,
    pub(super) proto: &'static str,
    pub(super) number: u32,
    pub(super) kind: Kind,
}

pub(super) struct MsgDef {
    pub(super) name: &'static str,
    /// Bytes reserved for this message's length prefix (its usual size).
    pub(super) reserve: usize,
    pub(super) fields: &'static [FieldDef],
}

pub(super) const fn f(
    json: &'static str,
    proto: &'static str,
    number: u32,
    kind: Kind,
) -> FieldDef {
    FieldDef {
        json,
        proto,
        number,
        kind,
    }
}

pub(super) static REQUEST: MsgDef = MsgDef {
    name: "ExportTraceServiceRequest",
    reserve: 0,
    fields: &[f(
        "resourceSpans",
        "resource_spans",
        1,
        Kind::Repeated(&RESOURCE_SPANS),
    )],
};

pub(super) static RESOURCE_SPANS: MsgDef = MsgDef {
    name: "ResourceSpans",
    reserve: 3,
    fields: &[
        f("resource", "resource", 1, Kind::Message(&RESOURCE)),
        f("scopeSpans", "scope_spans", 2, Kind::Repeated(&SCOPE_SPANS)),
        f("schemaUrl", "schema_url", 3, Kind::Str),
    ],
};

pub(super) static RESOURCE: MsgDef = MsgDef {
    name: "Resource",
    reserve: 2,
    fields: &[
        f("attributes", "attributes", 1, Kind::Repeated(&KEY_VALUE)),
        f(
            "droppedAttributesCount",
            "dropped_attributes_count",
            2,
            Kind::U32,
        ),
        f("entityRefs", "entity_refs", 3, Kind::Repeated(&ENTITY_REF)),
    ],
};

pub(super) static ENTITY_REF: MsgDef = MsgDef {
    name: "EntityRef",
    reserve: 1,
    fields: &[
        f("schemaUrl", "schema_url", 1, Kind::Str),
        f("type", "type", 2, Kind::Str),
        f("idKeys", "id_keys", 3, Kind::RepeatedStr),
        f("descriptionKeys", "description_keys", 4, Kind::RepeatedStr),
    ],
};

pub(super) static SCOPE_SPANS: MsgDef = MsgDef {
    name: "ScopeSpans",
    reserve: 3,
    fields: &[
        f("scope", "scope", 1, Kind::Message(&SCOPE)),
        f("spans", "spans", 2, Kind::Repeated(&SPAN)),
        f("schemaUrl", "schema_url", 3, Kind::Str),
    ],
};

pub(super) static SCOPE: MsgDef = MsgDef {
    name: "InstrumentationScope",
    reserve: 1,
    fields: &[
        f("name", "name", 1, Kind::Str),
        f("version", "version", 2, Kind::Str),
        f("attributes", "attributes", 3, Kind::Repeated(&KEY_VALUE)),
        f(
            "droppedAttributesCount",
            "dropped_attributes_count",
            4,
            Kind::U32,
        ),
    ],
};

/// `Span.flags`, the one field whose number is out of its declaration order.
pub(super) const SPAN_FLAGS: u32 = 16;

pub(super) static SPAN: MsgDef = MsgDef {
    name: "Span",
    reserve: 2,
    fields: &[
        f("traceId", "trace_id", 1, Kind::HexId),
        f("spanId", "span_id", 2, Kind::HexId),
        f("traceState", "trace_state", 3, Kind::Str),
        f("parentSpanId", "parent_span_id", 4, Kind::HexId),
        f("flags", "flags", SPAN_FLAGS, Kind::Fixed32),
        f("name", "name", 5, Kind::Str),
        f("kind", "kind", 6, Kind::Enum(SPAN_KINDS)),
        f(
            "startTimeUnixNano",
            "start_time_unix_nano",
            7,
            Kind::Fixed64,
        ),
        f("endTimeUnixNano", "end_time_unix_nano", 8, Kind::Fixed64),
        f("attributes", "attributes", 9, Kind::Repeated(&KEY_VALUE)),
        f(
            "droppedAttributesCount",
            "dropped_attributes_count",
            10,
            Kind::U32,
        ),
        f("events", "events", 11, Kind::Repeated(&EVENT)),
        f("droppedEventsCount", "dropped_events_count", 12, Kind::U32),
        f("links", "links", 13, Kind::Repeated(&LINK)),
        f("droppedLinksCount", "dropped_links_count", 14, Kind::U32),
        f("status", "status", 15, Kind::Message(&STATUS)),
    ],
};

pub(super) static EVENT: MsgDef = MsgDef {
    name: "Event",
    reserve: 1,
    fields: &[
        f("timeUnixNano", "time_unix_nano", 1, Kind::Fixed64),
        f("name", "name", 2, Kind::Str),
        f("attributes", "attributes", 3, Kind::Repeated(&KEY_VALUE)),
        f(
            "droppedAttributesCount",
            "dropped_attributes_count",
            4,
            Kind::U32,
        ),
    ],
};

pub(super) static LINK: MsgDef = MsgDef {
    name: "Link",
    reserve: 1,
    fields: &[
        f("traceId", "trace_id", 1, Kind::HexId),
        f("spanId", "span_id", 2, Kind::HexId),
        f("traceState", "trace_state", 3, Kind::Str),
        f("attributes", "attributes", 4, Kind::Repeated(&KEY_VALUE)),
        f(
            "droppedAttributesCount",
            "dropped_attributes_count",
            5,
            Kind::U32,
        ),
        f("flags", "flags", 6, Kind::Fixed32),
    ],
};

pub(super) static STATUS: MsgDef = MsgDef {
    name: "Status",
    reserve: 1,
    fields: &[
        f("message", "message", 2, Kind::Str),
        f("code", "code", 3, Kind::Enum(STATUS_CODES)),
    ],
};

pub(super) static KEY_VALUE: MsgDef = MsgDef {
    name: "KeyValue",
    reserve: 1,
    fields: &[
        f("key", "key", 1, Kind::Str),
        f("value", "value", 2, Kind::AnyValue),
        f("keyStrindex", "key_strindex", 3, Kind::I32),
    ],
};

/// `AnyValue` is written by its own visitor (a oneof); this def only names it in messages.
pub(super) static ANY_VALUE: MsgDef = MsgDef {
    name: "AnyValue",
    reserve: 1,
    fields: &[],
};

pub(super) static ARRAY_VALUE: MsgDef = MsgDef {
    name: "ArrayValue",
    reserve: 1,
    fields: &[f("values", "values", 1, Kind::RepeatedAnyValue)],
};

pub(super) static KEY_VALUE_LIST: MsgDef = MsgDef {
    name: "KeyValueList",
    reserve: 1,
    fields: &[f("values", "values", 1, Kind::Repeated(&KEY_VALUE))],
};
