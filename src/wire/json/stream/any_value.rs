//! `AnyValue`: attribute values, with arrays and key/value lists nested in them.

use super::*;

/// An `AnyValue`: an object whose last non-null member is the value (or `null` outside arrays).
pub(super) struct AnyValue<'o> {
    pub(super) out: &'o mut Vec<u8>,
    pub(super) field: u32,
    pub(super) name: &'static str,
    pub(super) in_array: bool,
}

impl<'de> DeserializeSeed<'de> for AnyValue<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for AnyValue<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: an OTLP/JSON AnyValue object", self.name)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        if self.in_array {
            return Err(E::invalid_type(de::Unexpected::Unit, &self));
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.out;
        let o = open(out, self.field, ANY_VALUE.reserve);
        let body = out.len();
        while let Some(member) = map.next_key_seed(MemberName)? {
            match member {
                Some(member) => map.next_value_seed(Member {
                    out: &mut *out,
                    body,
                    member,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        close(out, o);
        Ok(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum MemberKind {
    String = 1,
    Bool = 2,
    Int = 3,
    Double = 4,
    Array = 5,
    KvList = 6,
    Bytes = 7,
}

impl MemberKind {
    fn json(self) -> &'static str {
        match self {
            MemberKind::String => "stringValue",
            MemberKind::Bool => "boolValue",
            MemberKind::Int => "intValue",
            MemberKind::Double => "doubleValue",
            MemberKind::Array => "arrayValue",
            MemberKind::KvList => "kvlistValue",
            MemberKind::Bytes => "bytesValue",
        }
    }
}

pub(super) struct MemberName;

impl<'de> DeserializeSeed<'de> for MemberName {
    type Value = Option<MemberKind>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for MemberName {
    type Value = Option<MemberKind>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AnyValue member name")
    }
    #[inline]
    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(match key {
            "stringValue" | "string_value" => Some(MemberKind::String),
            "boolValue" | "bool_value" => Some(MemberKind::Bool),
            "intValue" | "int_value" => Some(MemberKind::Int),
            "doubleValue" | "double_value" => Some(MemberKind::Double),
            "arrayValue" | "array_value" => Some(MemberKind::Array),
            "kvlistValue" | "kvlist_value" => Some(MemberKind::KvList),
            "bytesValue" | "bytes_value" => Some(MemberKind::Bytes),
            _ => None,
        })
    }
}

/// One member of an `AnyValue`. A non-null member replaces whatever an earlier one wrote.
pub(super) struct Member<'o> {
    pub(super) out: &'o mut Vec<u8>,
    /// Where the `AnyValue`'s content starts.
    pub(super) body: usize,
    pub(super) member: MemberKind,
}

impl<'de> DeserializeSeed<'de> for Member<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.member {
            MemberKind::Array | MemberKind::KvList => {
                let def = if self.member == MemberKind::Array {
                    &ARRAY_VALUE
                } else {
                    &KEY_VALUE_LIST
                };
                d.deserialize_any(NestedList {
                    out: self.out,
                    body: self.body,
                    def,
                    field: self.member as u32,
                })
            }
            _ => d.deserialize_any(self),
        }
    }
}

impl Member<'_> {
    /// Drops an earlier member's encoding and returns the output to write this one into.
    fn start(&mut self) -> &mut Vec<u8> {
        self.out.truncate(self.body);
        &mut *self.out
    }

    fn put_double(mut self, v: f64) {
        let out = self.start();
        put_key(out, MemberKind::Double as u32, I64);
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }

    fn put_int(mut self, v: i64) {
        let out = self.start();
        put_key(out, MemberKind::Int as u32, VARINT);
        put_varint(out, v as u64);
    }
}

impl<'de> Visitor<'de> for Member<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.member {
            MemberKind::String => "a string",
            MemberKind::Bool => "true or false",
            MemberKind::Int => "a 64-bit integer (a number or a decimal string)",
            MemberKind::Double => {
                "a number, a numeric string, \"NaN\", \"Infinity\" or \"-Infinity\""
            }
            MemberKind::Bytes => "a base64 string",
            MemberKind::Array | MemberKind::KvList => "an object with \"values\"",
        };
        write!(f, "{}: {what}", self.member.json())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(mut self, v: bool) -> Result<(), E> {
        if self.member != MemberKind::Bool {
            return Err(E::invalid_type(de::Unexpected::Bool(v), &self));
        }
        let out = self.start();
        put_key(out, MemberKind::Bool as u32, VARINT);
        out.push(u8::from(v));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match self.member {
            MemberKind::Int => match i64::try_from(v) {
                Ok(v) => {
                    self.put_int(v);
                    Ok(())
                }
                Err(_) => Err(E::custom(format_args!(
                    "intValue: {v} is out of range for a 64-bit integer"
                ))),
            },
            MemberKind::Double => {
                self.put_double(v as f64);
                Ok(())
            }
            _ => Err(E::invalid_type(de::Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        match self.member {
            MemberKind::Int => {
                self.put_int(v);
                Ok(())
            }
            MemberKind::Double => {
                self.put_double(v as f64);
                Ok(())
            }
            _ => Err(E::invalid_type(de::Unexpected::Signed(v), &self)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        if self.member != MemberKind::Double {
            return Err(E::invalid_type(de::Unexpected::Float(v), &self));
        }
        self.put_double(v);
        Ok(())
    }

    fn visit_str<E: de::Error>(mut self, s: &str) -> Result<(), E> {
        match self.member {
            MemberKind::String => {
                put_len_field(self.start(), MemberKind::String as u32, s.as_bytes());
                Ok(())
            }
            MemberKind::Int => match s.parse::<i64>() {
                Ok(v) => {
                    self.put_int(v);
                    Ok(())
                }
                Err(e) => Err(E::custom(format_args!("intValue: {s:?}: {e}"))),
            },
            MemberKind::Double => {
                let v = match s {
                    "NaN" => f64::NAN,
                    "Infinity" => f64::INFINITY,
                    "-Infinity" => f64::NEG_INFINITY,
                    _ => s.parse::<f64>().map_err(|_| {
                        E::custom(format_args!(
                            "doubleValue: {s:?} is not a number, \"NaN\", \"Infinity\" or \"-Infinity\""
                        ))
                    })?,
                };
                self.put_double(v);
                Ok(())
            }
            MemberKind::Bytes => {
                let out = self.start();
                put_bytes_value(out, s).map_err(|e| E::custom(format_args!("bytesValue: {e}")))
            }
            _ => Err(E::invalid_type(de::Unexpected::Str(s), &self)),
        }
    }
}

/// Writes a base64 `bytesValue` (standard alphabet first, then URL-safe; padding optional).
pub(super) fn put_bytes_value(out: &mut Vec<u8>, s: &str) -> Result<(), base64::DecodeError> {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);
    put_key(out, MemberKind::Bytes as u32, LEN);
    let o = Open {
        at: out.len(),
        reserve: 1,
    };
    out.push(0);
    let body = out.len();
    if let Err(first) = STANDARD.decode_vec(s, out) {
        out.truncate(body);
        if URL_SAFE.decode_vec(s, out).is_err() {
            return Err(first);
        }
    }
    close(out, o);
    Ok(())
}

/// `arrayValue` / `kvlistValue`: `{"values": [...]}` (other members are skipped).
pub(super) struct NestedList<'o> {
    pub(super) out: &'o mut Vec<u8>,
    pub(super) body: usize,
    pub(super) def: &'static MsgDef,
    pub(super) field: u32,
}

impl<'de> Visitor<'de> for NestedList<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an OTLP/JSON {} object", self.def.name)
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.out.truncate(self.body);
        Msg {
            out: self.out,
            def: self.def,
            field: self.field,
            reserve: self.def.reserve,
            in_array: false,
        }
        .visit_map(map)
    }
}
