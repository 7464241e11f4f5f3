//! Scalar fields: numbers, enums, strings, hex ids and base64 bytes, written as they are read.

use super::*;

/// A scalar field. Defaults (0, "", empty ids) are left out, as prost leaves them out.
pub(super) struct Scalar<'o> {
    pub(super) out: &'o mut Vec<u8>,
    pub(super) fd: &'static FieldDef,
}

/// What a scalar field accepts, for error messages.
pub(super) fn expected(kind: Kind) -> &'static str {
    match kind {
        Kind::Str => "a string",
        Kind::HexId => "a hex string",
        Kind::Fixed64 => "an unsigned 64-bit integer (a number or a decimal string)",
        Kind::Fixed32 | Kind::U32 => "an unsigned 32-bit integer (a number or a decimal string)",
        Kind::I32 => "a 32-bit integer (a number or a decimal string)",
        Kind::Enum(_) => "an enum value (a number or a name)",
        _ => "a value",
    }
}

impl Scalar<'_> {
    fn put_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        let Scalar { out, fd } = self;
        let number = fd.number;
        match fd.kind {
            Kind::Fixed64 => {
                if v != 0 {
                    put_key(out, number, I64);
                    out.extend_from_slice(&v.to_le_bytes());
                }
            }
            Kind::Fixed32 | Kind::U32 => {
                let Ok(v) = u32::try_from(v) else {
                    return Err(E::custom(format_args!(
                        "{}: {v} is out of range for a 32-bit unsigned integer",
                        fd.json
                    )));
                };
                if v != 0 {
                    if matches!(fd.kind, Kind::Fixed32) {
                        put_key(out, number, I32);
                        out.extend_from_slice(&v.to_le_bytes());
                    } else {
                        put_key(out, number, VARINT);
                        put_varint(out, u64::from(v));
                    }
                }
            }
            Kind::I32 | Kind::Enum(_) => {
                let Ok(v) = i32::try_from(v) else {
                    return Err(E::custom(format_args!(
                        "{}: {v} is out of range for a 32-bit integer",
                        fd.json
                    )));
                };
                put_i32(out, number, v);
            }
            kind => {
                return Err(E::custom(format_args!(
                    "{}: invalid type: integer `{v}`, expected {}",
                    fd.json,
                    expected(kind)
                )))
            }
        }
        Ok(())
    }
}

#[inline]
pub(super) fn put_i32(out: &mut Vec<u8>, number: u32, v: i32) {
    if v != 0 {
        put_key(out, number, VARINT);
        // int32 and enums are sign-extended to 64 bits on the wire.
        put_varint(out, i64::from(v) as u64);
    }
}

impl<'de> Visitor<'de> for Scalar<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.fd.json, expected(self.fd.kind))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.put_u64(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        match self.fd.kind {
            Kind::I32 | Kind::Enum(_) => match i32::try_from(v) {
                Ok(v) => {
                    put_i32(self.out, self.fd.number, v);
                    Ok(())
                }
                Err(_) => Err(E::custom(format_args!(
                    "{}: {v} is out of range for a 32-bit integer",
                    self.fd.json
                ))),
            },
            _ if v >= 0 => self.put_u64(v as u64),
            _ => Err(E::invalid_type(de::Unexpected::Signed(v), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        let name = self.fd.json;
        match self.fd.kind {
            Kind::Str => {
                if !s.is_empty() {
                    put_len_field(self.out, self.fd.number, s.as_bytes());
                }
                Ok(())
            }
            Kind::HexId => put_hex_id(self.out, self.fd.number, name, s),
            Kind::Fixed64 => match s.parse::<u64>() {
                Ok(v) => self.put_u64(v),
                Err(e) => Err(E::custom(format_args!("{name}: {s:?}: {e}"))),
            },
            Kind::Fixed32 | Kind::U32 => match s.trim().parse::<u32>() {
                Ok(v) => self.put_u64(u64::from(v)),
                Err(e) => Err(E::custom(format_args!("{name}: {s:?}: {e}"))),
            },
            Kind::I32 => match s.trim().parse::<i32>() {
                Ok(v) => {
                    put_i32(self.out, self.fd.number, v);
                    Ok(())
                }
                Err(e) => Err(E::custom(format_args!("{name}: {s:?}: {e}"))),
            },
            Kind::Enum(names) => {
                let v = match names.iter().position(|n| *n == s) {
                    Some(i) => i as i32,
                    None => s.trim().parse::<i32>().map_err(|_| {
                        E::custom(format_args!("{name}: {s:?} is not one of {names:?}"))
                    })?,
                };
                put_i32(self.out, self.fd.number, v);
                Ok(())
            }
            _ => Err(E::invalid_type(de::Unexpected::Str(s), &self)),
        }
    }
}

/// Writes a hex id as bytes. An id of odd length is kept as its characters (see [`super`]);
/// a `0x` prefix is accepted before an even number of digits.
pub(super) fn put_hex_id<E: de::Error>(
    out: &mut Vec<u8>,
    number: u32,
    name: &str,
    s: &str,
) -> Result<(), E> {
    if s.is_empty() {
        return Ok(());
    }
    let digits = match s.strip_prefix("0x") {
        Some(rest) if rest.len() % 2 == 0 && rest.bytes().all(|b| b.is_ascii_hexdigit()) => rest,
        _ => s,
    };
    if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(E::custom(format_args!(
            "{name} {s:?} is not a hex string (found {bad:?})"
        )));
    }
    if digits.len() % 2 == 1 {
        put_len_field(out, number, digits.as_bytes());
        return Ok(());
    }
    put_key(out, number, LEN);
    put_varint(out, (digits.len() / 2) as u64);
    let at = out.len();
    out.resize(at + digits.len() / 2, 0);
    hex::decode_to_slice(digits, &mut out[at..])
        .map_err(|e| E::custom(format_args!("{name} {s:?}: {e}")))
}
