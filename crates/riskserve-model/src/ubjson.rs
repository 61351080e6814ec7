//! A UBJSON decoder (Universal Binary JSON, as XGBoost's `save_model("m.ubj")` writes it) into a
//! borrowed document tree, [`Value`], which the XGBoost importer's JSON reader produces too.
//!
//! The decoder never trusts a count from the file: every length is checked against the bytes that
//! remain before anything is allocated, optimized arrays of fixed-size numbers are kept as slices
//! of the input (converted only when read), and containers nest at most [`MAX_DEPTH`] deep.

use std::borrow::Cow;
use std::fmt;

/// The deepest nesting of arrays and objects accepted; XGBoost models nest about six deep.
pub const MAX_DEPTH: usize = 64;

/// A decoded document. Strings and packed arrays borrow from the input.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Number(Number<'a>),
    String(Cow<'a, str>),
    Array(Array<'a>),
    Object(Object<'a>),
}

impl<'a> Value<'a> {
    /// What kind of value this is, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }

    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Value::Object(object) => Some(object),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Array<'a>> {
        match self {
            Value::Array(array) => Some(array),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    /// The value as a number; booleans count as 0 and 1 (XGBoost has written flags both ways).
    pub fn as_number(&self) -> Option<Number<'a>> {
        match self {
            Value::Number(number) => Some(*number),
            Value::Bool(flag) => Some(Number::Unsigned(u64::from(*flag))),
            _ => None,
        }
    }
}

/// A number as the file stored it. Decimal text (JSON numbers, UBJSON high-precision numbers) is
/// kept as text so that each reader parses it directly into the type it needs: parsing `0.1`
/// straight to `f32` is correctly rounded, going through `f64` first is not always.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number<'a> {
    Signed(i64),
    Unsigned(u64),
    Float32(f32),
    Float64(f64),
    /// A number literal whose syntax has been checked: JSON's grammar, or `NaN`, `Infinity`,
    /// `-Infinity`.
    Text(&'a str),
}

impl Number<'_> {
    pub fn to_f32(self) -> Option<f32> {
        match self {
            Number::Signed(value) => Some(value as f32),
            Number::Unsigned(value) => Some(value as f32),
            Number::Float32(value) => Some(value),
            Number::Float64(value) => Some(value as f32),
            Number::Text(text) => text.parse().ok(),
        }
    }

    pub fn to_f64(self) -> Option<f64> {
        match self {
            Number::Signed(value) => Some(value as f64),
            Number::Unsigned(value) => Some(value as f64),
            Number::Float32(value) => Some(f64::from(value)),
            Number::Float64(value) => Some(value),
            Number::Text(text) => text.parse().ok(),
        }
    }

    /// The number as an integer; a float counts only when it is integral and in range.
    pub fn to_i64(self) -> Option<i64> {
        match self {
            Number::Signed(value) => Some(value),
            Number::Unsigned(value) => i64::try_from(value).ok(),
            Number::Float32(value) => integral_f64_to_i64(f64::from(value)),
            Number::Float64(value) => integral_f64_to_i64(value),
            Number::Text(text) => parse_short_integer(text)
                .or_else(|| text.parse().ok())
                .or_else(|| integral_f64_to_i64(text.parse().ok()?)),
        }
    }
}

fn integral_f64_to_i64(value: f64) -> Option<i64> {
    // 2^63 is exactly representable; every integral f64 below it in magnitude fits an i64.
    (value.fract() == 0.0 && value.abs() < 9_223_372_036_854_775_808.0).then_some(value as i64)
}

/// A number type that array elements convert to.
pub trait FromNumber: Sized {
    fn from_number(number: Number<'_>) -> Option<Self>;
}

impl FromNumber for f32 {
    fn from_number(number: Number<'_>) -> Option<Self> {
        number.to_f32()
    }
}

impl FromNumber for f64 {
    fn from_number(number: Number<'_>) -> Option<Self> {
        number.to_f64()
    }
}

impl FromNumber for i64 {
    fn from_number(number: Number<'_>) -> Option<Self> {
        number.to_i64()
    }
}

impl FromNumber for i32 {
    fn from_number(number: Number<'_>) -> Option<Self> {
        i32::try_from(number.to_i64()?).ok()
    }
}

impl FromNumber for u8 {
    fn from_number(number: Number<'_>) -> Option<Self> {
        u8::try_from(number.to_i64()?).ok()
    }
}

/// An object's members in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object<'a> {
    pub members: Vec<(Cow<'a, str>, Value<'a>)>,
}

impl<'a> Object<'a> {
    /// The member named `key`; when a key repeats, the last one counts (as in most JSON readers).
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.members.iter().rev().find(|(name, _)| name == key).map(|(_, value)| value)
    }
}

/// An array, in the representation that is cheapest for what it holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Array<'a> {
    Values(Vec<Value<'a>>),
    /// A UBJSON optimized array of fixed-size numbers: the elements' big-endian bytes.
    Packed {
        element: Element,
        bytes: &'a [u8],
    },
    /// A JSON array that holds only numbers: the text between its brackets, `len` comma-separated
    /// literals whose syntax has been checked. Arrays that are never read are never converted.
    NumberText {
        text: &'a str,
        len: usize,
    },
}

/// Why an array could not be read as numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementError {
    pub index: usize,
    pub found: &'static str,
}

impl fmt::Display for ElementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "element {} is {}", self.index, self.found)
    }
}

impl<'a> Array<'a> {
    pub fn len(&self) -> usize {
        match self {
            Array::Values(values) => values.len(),
            Array::Packed { element, bytes } => bytes.len() / element.size(),
            Array::NumberText { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements that are not packed numbers: `Some` for [`Array::Values`].
    pub fn values(&self) -> Option<&[Value<'a>]> {
        match self {
            Array::Values(values) => Some(values),
            _ => None,
        }
    }

    /// Every element converted to `T`; the error names the first element that is not a number or
    /// does not fit `T`.
    pub fn to_numbers<T: FromNumber>(&self) -> Result<Vec<T>, ElementError> {
        let mut out = Vec::with_capacity(self.len());
        match self {
            Array::Values(values) => {
                for (index, value) in values.iter().enumerate() {
                    let number = value.as_number().ok_or(ElementError { index, found: value.kind() })?;
                    out.push(T::from_number(number).ok_or(ElementError { index, found: "out of range" })?);
                }
            }
            Array::Packed { element, bytes } => {
                for (index, chunk) in bytes.chunks_exact(element.size()).enumerate() {
                    let number = element.decode(chunk);
                    out.push(T::from_number(number).ok_or(ElementError { index, found: "out of range" })?);
                }
            }
            Array::NumberText { text, .. } => {
                for (index, literal) in (NumberLiterals { text, position: 0 }).enumerate() {
                    out.push(
                        T::from_number(Number::Text(literal)).ok_or(ElementError { index, found: "out of range" })?,
                    );
                }
            }
        }
        Ok(out)
    }
}

/// The literals of an [`Array::NumberText`]: comma-separated, with JSON whitespace around them.
struct NumberLiterals<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Iterator for NumberLiterals<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        while bytes.get(self.position).is_some_and(|byte| is_json_whitespace(*byte) || *byte == b',') {
            self.position += 1;
        }
        let start = self.position;
        while bytes.get(self.position).is_some_and(|byte| !is_json_whitespace(*byte) && *byte != b',') {
            self.position += 1;
        }
        // Literals are ASCII, so these are character boundaries.
        (self.position > start).then(|| &self.text[start..self.position])
    }
}

fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// Parses a plain decimal integer of up to 18 digits without the generic parser's overhead;
/// anything else is left to the generic parsers.
fn parse_short_integer(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let (negative, digits) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut value = 0i64;
    for digit in digits {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(digit - b'0');
    }
    Some(if negative { -value } else { value })
}

/// The element type of an optimized array of fixed-size numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    Int8,
    Uint8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
}

impl Element {
    fn from_marker(marker: u8) -> Option<Element> {
        Some(match marker {
            b'i' => Element::Int8,
            b'U' => Element::Uint8,
            b'I' => Element::Int16,
            b'l' => Element::Int32,
            b'L' => Element::Int64,
            b'd' => Element::Float32,
            b'D' => Element::Float64,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            Element::Int8 | Element::Uint8 => 1,
            Element::Int16 => 2,
            Element::Int32 | Element::Float32 => 4,
            Element::Int64 | Element::Float64 => 8,
        }
    }

    /// Decodes one element from exactly [`Element::size`] big-endian bytes.
    fn decode(self, bytes: &[u8]) -> Number<'static> {
        let mut buffer = [0u8; 8];
        buffer[..bytes.len()].copy_from_slice(bytes);
        match self {
            Element::Int8 => Number::Signed(i64::from(buffer[0] as i8)),
            Element::Uint8 => Number::Unsigned(u64::from(buffer[0])),
            Element::Int16 => Number::Signed(i64::from(i16::from_be_bytes([buffer[0], buffer[1]]))),
            Element::Int32 => {
                Number::Signed(i64::from(i32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]])))
            }
            Element::Int64 => Number::Signed(i64::from_be_bytes(buffer)),
            Element::Float32 => Number::Float32(f32::from_be_bytes([buffer[0], buffer[1], buffer[2], buffer[3]])),
            Element::Float64 => Number::Float64(f64::from_be_bytes(buffer)),
        }
    }
}

/// Why a document could not be decoded: what is wrong and at which byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one UBJSON value that fills `bytes` (trailing no-op markers `N` are allowed).
pub fn decode(bytes: &[u8]) -> Result<Value<'_>, DecodeError> {
    let mut decoder = Decoder { bytes, position: 0, depth: 0 };
    let marker = decoder.next_marker()?;
    let value = decoder.value(marker)?;
    while decoder.position < bytes.len() {
        if bytes[decoder.position] != b'N' {
            return Err(decoder.error("unexpected bytes after the document"));
        }
        decoder.position += 1;
    }
    Ok(value)
}

struct Decoder<'a> {
    bytes: &'a [u8],
    position: usize,
    depth: usize,
}

/// What a container header announced: an element type (`$`) and a count (`#`).
struct Header {
    element_marker: Option<u8>,
    count: Option<usize>,
}

impl<'a> Decoder<'a> {
    fn error(&self, message: impl Into<String>) -> DecodeError {
        DecodeError { offset: self.position, message: message.into() }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    fn take(&mut self, count: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if count > self.remaining() {
            return Err(self.error(format!("{what} needs {count} bytes but {} remain", self.remaining())));
        }
        let slice = &self.bytes[self.position..self.position + count];
        self.position += count;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.bytes.get(self.position).ok_or_else(|| self.error("the document ends early"))?;
        self.position += 1;
        Ok(byte)
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.bytes.get(self.position).copied().ok_or_else(|| self.error("the document ends early"))
    }

    /// The next type marker, skipping no-op markers.
    fn next_marker(&mut self) -> Result<u8, DecodeError> {
        loop {
            let marker = self.byte()?;
            if marker != b'N' {
                return Ok(marker);
            }
        }
    }

    fn fixed(&mut self, element: Element) -> Result<Number<'a>, DecodeError> {
        let bytes = self.take(element.size(), "a number")?;
        Ok(element.decode(bytes))
    }

    /// A length or count: an integer of any width, not negative.
    fn length(&mut self) -> Result<usize, DecodeError> {
        let start = self.position;
        let marker = self.byte()?;
        let element = Element::from_marker(marker)
            .filter(|element| !matches!(element, Element::Float32 | Element::Float64))
            .ok_or_else(|| DecodeError {
                offset: start,
                message: format!("a length has marker {}", describe(marker)),
            })?;
        let value = self.fixed(element)?.to_i64().unwrap_or(-1);
        usize::try_from(value).map_err(|_| DecodeError { offset: start, message: format!("negative length {value}") })
    }

    fn text(&mut self, what: &str) -> Result<&'a str, DecodeError> {
        let length = self.length()?;
        let start = self.position;
        let bytes = self.take(length, what)?;
        std::str::from_utf8(bytes)
            .map_err(|_| DecodeError { offset: start, message: format!("{what} is not valid UTF-8") })
    }

    fn value(&mut self, marker: u8) -> Result<Value<'a>, DecodeError> {
        let start = self.position.saturating_sub(1);
        Ok(match marker {
            b'Z' => Value::Null,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'C' => {
                let byte = self.byte()?;
                if !byte.is_ascii() {
                    return Err(DecodeError { offset: start, message: "a char is not ASCII".into() });
                }
                Value::String(Cow::Owned(char::from(byte).to_string()))
            }
            b'S' => Value::String(Cow::Borrowed(self.text("a string")?)),
            b'H' => {
                let text = self.text("a high-precision number")?;
                if !is_number_literal(text) {
                    return Err(DecodeError {
                        offset: start,
                        message: format!("high-precision number {text:?} is not a number"),
                    });
                }
                Value::Number(Number::Text(text))
            }
            b'[' => self.nested(|decoder| decoder.array())?,
            b'{' => self.nested(|decoder| decoder.object())?,
            _ => match Element::from_marker(marker) {
                Some(element) => Value::Number(self.fixed(element)?),
                None => {
                    return Err(DecodeError { offset: start, message: format!("unknown marker {}", describe(marker)) });
                }
            },
        })
    }

    fn nested(
        &mut self,
        body: impl FnOnce(&mut Self) -> Result<Value<'a>, DecodeError>,
    ) -> Result<Value<'a>, DecodeError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(format!("containers nest more than {MAX_DEPTH} deep")));
        }
        self.depth += 1;
        let value = body(self)?;
        self.depth -= 1;
        Ok(value)
    }

    /// Reads an optional `$type` and `#count` after an opening bracket. A count is accepted only
    /// when the remaining bytes could hold that many elements, so that nothing is allocated for a
    /// count the file cannot back.
    fn header(&mut self) -> Result<Header, DecodeError> {
        let mut header = Header { element_marker: None, count: None };
        if self.peek()? == b'$' {
            self.position += 1;
            let marker = self.byte()?;
            if matches!(marker, b'N' | b'$' | b'#' | b']' | b'}') {
                return Err(self.error(format!("an optimized container has element type {}", describe(marker))));
            }
            header.element_marker = Some(marker);
            if self.peek()? != b'#' {
                return Err(self.error("an optimized container with a type has no count"));
            }
        }
        if self.peek()? == b'#' {
            self.position += 1;
            let count = self.length()?;
            let minimum_bytes = match header.element_marker.and_then(Element::from_marker) {
                Some(element) => count.checked_mul(element.size()),
                None => Some(count),
            };
            if minimum_bytes.is_none_or(|needed| needed > self.remaining()) {
                return Err(self
                    .error(format!("a container claims {count} elements but only {} bytes remain", self.remaining())));
            }
            header.count = Some(count);
        }
        Ok(header)
    }

    fn array(&mut self) -> Result<Value<'a>, DecodeError> {
        let header = self.header()?;
        if let (Some(element), Some(count)) = (header.element_marker.and_then(Element::from_marker), header.count) {
            let bytes = self.take(count * element.size(), "an optimized array")?;
            return Ok(Value::Array(Array::Packed { element, bytes }));
        }
        let mut values = Vec::with_capacity(header.count.unwrap_or(0));
        match (header.element_marker, header.count) {
            (Some(marker), Some(count)) => {
                for _ in 0..count {
                    values.push(self.value(marker)?);
                }
            }
            (None, Some(count)) => {
                for _ in 0..count {
                    let marker = self.next_marker()?;
                    values.push(self.value(marker)?);
                }
            }
            _ => loop {
                let marker = self.next_marker()?;
                if marker == b']' {
                    break;
                }
                values.push(self.value(marker)?);
            },
        }
        Ok(Value::Array(Array::Values(values)))
    }

    fn object(&mut self) -> Result<Value<'a>, DecodeError> {
        let header = self.header()?;
        let mut members = Vec::with_capacity(header.count.unwrap_or(0));
        let mut read_member = |decoder: &mut Self| -> Result<(), DecodeError> {
            let key = decoder.text("an object key")?;
            let marker = match header.element_marker {
                Some(marker) => marker,
                None => decoder.next_marker()?,
            };
            members.push((Cow::Borrowed(key), decoder.value(marker)?));
            Ok(())
        };
        match header.count {
            Some(count) => {
                for _ in 0..count {
                    read_member(self)?;
                }
            }
            None => loop {
                while self.peek()? == b'N' {
                    self.position += 1;
                }
                if self.peek()? == b'}' {
                    self.position += 1;
                    break;
                }
                read_member(self)?;
            },
        }
        Ok(Value::Object(Object { members }))
    }
}

fn describe(marker: u8) -> String {
    if marker.is_ascii_graphic() { format!("'{}'", char::from(marker)) } else { format!("0x{marker:02x}") }
}

/// Whether `text` is a JSON number literal, or one of the non-finite spellings XGBoost reads
/// (`NaN`, `Infinity`, `-Infinity`).
pub fn is_number_literal(text: &str) -> bool {
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        return true;
    }
    number_literal_length(text.as_bytes()) == Some(text.len())
}

/// The length of the JSON number literal at the start of `bytes`, if one starts there.
pub fn number_literal_length(bytes: &[u8]) -> Option<usize> {
    let mut position = 0;
    let digits = |position: &mut usize| {
        let start = *position;
        while bytes.get(*position).is_some_and(u8::is_ascii_digit) {
            *position += 1;
        }
        *position - start
    };
    if bytes.first() == Some(&b'-') {
        position += 1;
    }
    match bytes.get(position) {
        Some(b'0') => position += 1,
        Some(b'1'..=b'9') => {
            digits(&mut position);
        }
        _ => return None,
    }
    if bytes.get(position) == Some(&b'.') {
        position += 1;
        if digits(&mut position) == 0 {
            return None;
        }
    }
    if matches!(bytes.get(position), Some(b'e' | b'E')) {
        position += 1;
        if matches!(bytes.get(position), Some(b'+' | b'-')) {
            position += 1;
        }
        if digits(&mut position) == 0 {
            return None;
        }
    }
    Some(position)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key as UBJSON writes it: a length (int8 here) and the bytes, no `S` marker.
    fn key(out: &mut Vec<u8>, name: &str) {
        out.push(b'i');
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
    }

    #[test]
    fn decodes_scalars_of_every_width() {
        let cases: Vec<(Vec<u8>, Value)> = vec![
            (vec![b'Z'], Value::Null),
            (vec![b'T'], Value::Bool(true)),
            (vec![b'F'], Value::Bool(false)),
            (vec![b'i', 0xff], Value::Number(Number::Signed(-1))),
            (vec![b'U', 0xff], Value::Number(Number::Unsigned(255))),
            (vec![b'I', 0x80, 0x00], Value::Number(Number::Signed(-32768))),
            (vec![b'l', 0x00, 0x01, 0x00, 0x00], Value::Number(Number::Signed(65536))),
            (vec![b'L', 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], Value::Number(Number::Signed(i64::MAX))),
            (vec![b'd', 0x3f, 0xc0, 0x00, 0x00], Value::Number(Number::Float32(1.5))),
            (vec![b'D', 0xc0, 0x04, 0, 0, 0, 0, 0, 0], Value::Number(Number::Float64(-2.5))),
            (vec![b'C', b'x'], Value::String(Cow::Borrowed("x"))),
            (vec![b'S', b'i', 3, b'a', b'b', b'c'], Value::String(Cow::Borrowed("abc"))),
            (vec![b'H', b'U', 4, b'1', b'e', b'-', b'7'], Value::Number(Number::Text("1e-7"))),
            (vec![b'N', b'N', b'T', b'N'], Value::Bool(true)),
        ];
        for (bytes, expected) in cases {
            assert_eq!(decode(&bytes).unwrap(), expected, "{bytes:?}");
        }
    }

    #[test]
    fn decodes_nested_and_optimized_containers() {
        // {"a": [$d#i2 1.5 -2.0], "b": {"c": [i1 S"x" Z]}, "d": [$U#i3 0 1 255], "e": {$l#i1 "f": 7}}
        let mut bytes = vec![b'{'];
        key(&mut bytes, "a");
        bytes.extend_from_slice(&[b'[', b'$', b'd', b'#', b'i', 2, 0x3f, 0xc0, 0, 0, 0xc0, 0, 0, 0]);
        key(&mut bytes, "b");
        bytes.push(b'{');
        key(&mut bytes, "c");
        bytes.extend_from_slice(&[b'[', b'i', 1, b'S', b'i', 1, b'x', b'N', b'Z', b']']);
        bytes.push(b'}');
        key(&mut bytes, "d");
        bytes.extend_from_slice(&[b'[', b'$', b'U', b'#', b'i', 3, 0, 1, 255]);
        key(&mut bytes, "e");
        bytes.extend_from_slice(&[b'{', b'$', b'l', b'#', b'i', 1]);
        key(&mut bytes, "f");
        bytes.extend_from_slice(&[0, 0, 0, 7]);
        bytes.push(b'}');

        let value = decode(&bytes).unwrap();
        let object = value.as_object().unwrap();
        let a = object.get("a").unwrap().as_array().unwrap();
        assert!(matches!(a, Array::Packed { element: Element::Float32, .. }));
        assert_eq!(a.to_numbers::<f32>().unwrap(), vec![1.5, -2.0]);
        let c = object.get("b").unwrap().as_object().unwrap().get("c").unwrap().as_array().unwrap();
        assert_eq!(c.values().unwrap(), &[Value::Number(Number::Signed(1)), Value::String("x".into()), Value::Null]);
        let d = object.get("d").unwrap().as_array().unwrap();
        assert_eq!(d.to_numbers::<u8>().unwrap(), vec![0, 1, 255]);
        assert_eq!(d.to_numbers::<i64>().unwrap(), vec![0, 1, 255]);
        let e = object.get("e").unwrap().as_object().unwrap();
        assert_eq!(e.get("f").unwrap(), &Value::Number(Number::Signed(7)));
    }

    #[test]
    fn counted_containers_without_a_type() {
        // [#i2 i5 S"ab"] and {#i1 "k" T}
        let bytes = [b'[', b'#', b'i', 2, b'i', 5, b'S', b'i', 2, b'a', b'b'];
        let value = decode(&bytes).unwrap();
        assert_eq!(value.as_array().unwrap().len(), 2);
        let mut bytes = vec![b'{', b'#', b'i', 1];
        key(&mut bytes, "k");
        bytes.push(b'T');
        assert_eq!(decode(&bytes).unwrap().as_object().unwrap().get("k"), Some(&Value::Bool(true)));
    }

    #[test]
    fn refuses_hostile_documents() {
        let huge_count = [b'[', b'$', b'd', b'#', b'L', 0x10, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        let overflow_count = [b'[', b'$', b'D', b'#', b'L', 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        let untyped_count = [b'[', b'#', b'l', 0x7f, 0, 0, 0, b'Z'];
        let zero_size_count = [b'[', b'$', b'Z', b'#', b'l', 0x7f, 0, 0, 0];
        let negative_length = [b'S', b'i', 0xff, b'a'];
        let long_string = [b'S', b'i', 10, b'a'];
        let bad_utf8 = [b'S', b'i', 1, 0xff];
        let unknown_marker = [b'[', b'X', b']'];
        let truncated = [b'{', b'i', 1, b'a', b'['];
        let float_length = [b'S', b'd', 0, 0, 0, 0];
        let typed_without_count = [b'[', b'$', b'i', b'i', 1, b']'];
        let trailing = [b'T', b'T'];
        let bad_high_precision = [b'H', b'i', 2, b'1', b'x'];
        let non_ascii_char = [b'C', 0xc3];
        let mut deep = vec![b'['; MAX_DEPTH + 1];
        deep.extend(vec![b']'; MAX_DEPTH + 1]);
        let cases: [(&[u8], &str); 15] = [
            (&huge_count, "claims"),
            (&overflow_count, "claims"),
            (&untyped_count, "claims"),
            (&zero_size_count, "claims"),
            (&negative_length, "negative length"),
            (&long_string, "needs 10 bytes"),
            (&bad_utf8, "UTF-8"),
            (&unknown_marker, "unknown marker 'X'"),
            (&truncated, "ends early"),
            (&float_length, "a length has marker 'd'"),
            (&typed_without_count, "no count"),
            (&trailing, "after the document"),
            (&bad_high_precision, "not a number"),
            (&non_ascii_char, "not ASCII"),
            (&deep, "nest more than"),
        ];
        for (bytes, expected) in cases {
            let error = decode(bytes).unwrap_err();
            assert!(error.to_string().contains(expected), "{bytes:?}: {error}");
        }
        // Exactly MAX_DEPTH levels are fine.
        let mut deep = vec![b'['; MAX_DEPTH];
        deep.extend(vec![b']'; MAX_DEPTH]);
        assert!(decode(&deep).is_ok());
    }

    #[test]
    fn number_conversions_refuse_what_does_not_fit() {
        let array = Array::Values(vec![Value::Number(Number::Float64(1.5))]);
        assert_eq!(array.to_numbers::<i64>().unwrap_err(), ElementError { index: 0, found: "out of range" });
        let array = Array::Values(vec![Value::Number(Number::Signed(1)), Value::String("x".into())]);
        assert_eq!(array.to_numbers::<f32>().unwrap_err(), ElementError { index: 1, found: "a string" });
        let array = Array::Packed { element: Element::Int32, bytes: &[0, 0, 1, 0] };
        assert_eq!(array.to_numbers::<u8>().unwrap_err(), ElementError { index: 0, found: "out of range" });
        assert_eq!(Number::Text("2E0").to_i64(), Some(2));
        assert_eq!(Number::Text("0.1").to_f32(), Some(0.1f32));
        assert_eq!(Number::Float32(3.0).to_i64(), Some(3));
        assert_eq!(Number::Float64(1e300).to_i64(), None);
    }

    #[test]
    fn number_literals() {
        for good in ["0", "-0", "12", "1.5", "-1.5e-7", "4.2E-1", "1E+30", "NaN", "Infinity", "-Infinity"] {
            assert!(is_number_literal(good), "{good}");
        }
        for bad in ["", "-", "01", "1.", ".5", "1e", "+1", "1.5.2", "nan", "0x10", "1 "] {
            assert!(!is_number_literal(bad), "{bad}");
        }
    }
}
