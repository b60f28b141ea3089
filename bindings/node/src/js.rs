//! Reading JavaScript values: what kind each is, with only the safe napi
//! calls (a type check, then a coercion of a value already of that type).

use napi::ValueType;
use napi::bindgen_prelude::{Env, Function, JsObjectValue, JsValue, Object, Result, Unknown};
use napi::{KeyCollectionMode, KeyConversion, KeyFilter};

/// How deep objects may nest in what the binding reads: serde_json's
/// recursion limit, so that a JS object is held to what the same request
/// as JSON text would be (and a 1000-deep object cannot overflow a stack).
pub const MAX_DEPTH: usize = 128;

/// One JavaScript value, by what Grant can make of it.
pub enum Js<'e> {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    Str(String),
    /// An array, or a `Set` turned into one.
    List(Object<'e>),
    Object(Object<'e>),
    /// A BigInt, a Symbol, a function, an external: no Grant value.
    Other(&'static str),
}

impl Js<'_> {
    /// How a message names the value.
    pub fn describe(&self) -> String {
        match self {
            Js::Undefined => "`undefined`".to_string(),
            Js::Null => "`null`".to_string(),
            Js::Bool(b) => format!("`{b}`"),
            Js::Number(n) => format!("`{n}`"),
            Js::Str(s) => crate::quoted(s),
            Js::List(_) => "a list".to_string(),
            Js::Object(_) => "an object".to_string(),
            Js::Other(what) => (*what).to_string(),
        }
    }
}

/// What `value` is; an object is an object (see [`classify_value`]).
pub fn classify<'e>(env: &Env, value: Unknown<'e>) -> Result<Js<'e>> {
    classify_as(env, value, false)
}

/// What `value` is, a `Set` read as the list of its elements: for a value
/// that may be a set attribute's.
pub fn classify_value<'e>(env: &Env, value: Unknown<'e>) -> Result<Js<'e>> {
    classify_as(env, value, true)
}

fn classify_as<'e>(env: &Env, value: Unknown<'e>, sets: bool) -> Result<Js<'e>> {
    Ok(match value.get_type()? {
        ValueType::Undefined => Js::Undefined,
        ValueType::Null => Js::Null,
        ValueType::Boolean => Js::Bool(value.coerce_to_bool()?),
        ValueType::Number => Js::Number(value.coerce_to_number()?.get_double()?),
        ValueType::String => Js::Str(value.coerce_to_string()?.into_utf8()?.into_owned()?),
        ValueType::Object => {
            if value.is_array()? {
                Js::List(value.coerce_to_object()?)
            } else if sets && is_set(env, &value)? {
                Js::List(set_to_array(env, value)?)
            } else {
                Js::Object(value.coerce_to_object()?)
            }
        }
        ValueType::BigInt => Js::Other("a BigInt"),
        ValueType::Symbol => Js::Other("a Symbol"),
        ValueType::Function => Js::Other("a function"),
        _ => Js::Other("an external value"),
    })
}

fn is_set(env: &Env, value: &Unknown<'_>) -> Result<bool> {
    let set: Function<'_, Unknown<'_>, Unknown<'_>> =
        env.get_global()?.get_named_property("Set")?;
    value.instanceof(set)
}

fn set_to_array<'e>(env: &Env, set: Unknown<'e>) -> Result<Object<'e>> {
    let array: Unknown<'_> = env.get_global()?.get_named_property("Array")?;
    let array = array.coerce_to_object()?;
    let from: Function<'_, Unknown<'_>, Unknown<'_>> = array.get_named_property("from")?;
    let list = from.call(set)?;
    let list: Unknown<'e> = list.to_unknown();
    list.coerce_to_object()
}

/// The own enumerable keys of an object, in property order, Symbols
/// included (napi takes one filter; [`is_string`] tells them apart), as JS
/// values: a property is then read by its key
/// value, not by a name made into a JS string again.
pub fn keys<'e>(object: &Object<'e>) -> Result<(Object<'e>, u32)> {
    let names = object.get_all_property_names(
        KeyCollectionMode::OwnOnly,
        KeyFilter::Enumerable,
        KeyConversion::NumbersToStrings,
    )?;
    let len = names.get_array_length_unchecked()?;
    Ok((names, len))
}

/// Whether a key is a string (not a Symbol).
pub fn is_string(key: &Unknown<'_>) -> Result<bool> {
    Ok(key.get_type()? == ValueType::String)
}

/// A JS string as Rust text.
pub fn text(value: &Unknown<'_>) -> Result<String> {
    value.coerce_to_string()?.into_utf8()?.into_owned()
}

/// A JavaScript value as JSON, the way `JSON.stringify` writes it
/// (`undefined`, functions and Symbols left out of objects, `null` in
/// arrays; non-finite numbers `null`), except that a Set is an array and a
/// BigInt in the 64-bit range an integer. For the ledger's operations,
/// which take attributes as JSON. Nesting is bounded by [`MAX_DEPTH`].
pub fn to_json(env: &Env, value: Unknown<'_>, depth: usize) -> Result<Option<serde_json::Value>> {
    use serde_json::Value as J;
    if depth > MAX_DEPTH {
        return Err(napi::Error::from_reason(format!(
            "the value nests objects more than {MAX_DEPTH} deep"
        )));
    }
    if value.get_type()? == ValueType::BigInt {
        let text = value.coerce_to_string()?.into_utf8()?.into_owned()?;
        return Ok(text
            .parse::<i64>()
            .ok()
            .map(J::from)
            .or_else(|| text.parse::<u64>().ok().map(J::from)));
    }
    Ok(match classify_value(env, value)? {
        Js::Undefined | Js::Other(_) => None,
        Js::Null => Some(J::Null),
        Js::Bool(b) => Some(J::Bool(b)),
        Js::Number(n) => Some(match crate::request::number(n) {
            Ok(i) => J::from(i),
            Err(_) => serde_json::Number::from_f64(n).map_or(J::Null, J::Number),
        }),
        Js::Str(s) => Some(J::String(s)),
        Js::List(list) => {
            let len = list.get_array_length()?;
            let mut items = Vec::with_capacity(len as usize);
            for i in 0..len {
                let item: Unknown<'_> = list.get_element(i)?;
                items.push(to_json(env, item, depth + 1)?.unwrap_or(J::Null));
            }
            Some(J::Array(items))
        }
        Js::Object(object) => Some(J::Object(to_json_map(env, &object, depth)?)),
    })
}

/// An object's properties as a JSON map ([`to_json`]).
pub fn to_json_map(
    env: &Env,
    object: &Object<'_>,
    depth: usize,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut map = serde_json::Map::new();
    let (names, len) = keys(object)?;
    for i in 0..len {
        let key: Unknown<'_> = names.get_element(i)?;
        if !is_string(&key)? {
            continue;
        }
        let value: Unknown<'_> = object.get_property(key)?;
        if let Some(value) = to_json(env, value, depth + 1)? {
            map.insert(text(&key)?, value);
        }
    }
    Ok(map)
}
