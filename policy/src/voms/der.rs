//! A small strict DER walker over `asn1-rs`, for the parts of RFC 5755 that no crate parses.
//!
//! Every accessor names *what* it expected so that a malformed AC yields a precise
//! [`VomsError::Der`] instead of a panic; nothing here allocates per element.

use asn1_rs::{Any, Class, FromDer, Oid};

use super::error::VomsError;

/// One DER element: its identifier, its content and its full encoding (for signatures).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub class: Class,
    pub tag: u32,
    pub constructed: bool,
    pub content: &'a [u8],
    pub raw: &'a [u8],
}

pub(crate) fn der_err(what: &'static str, why: impl Into<String>) -> VomsError {
    VomsError::Der {
        what,
        why: why.into(),
    }
}

/// Universal tag numbers used by RFC 5755 structures.
pub(crate) mod tag {
    pub const BOOLEAN: u32 = 1;
    pub const INTEGER: u32 = 2;
    pub const BIT_STRING: u32 = 3;
    pub const OCTET_STRING: u32 = 4;
    pub const OID: u32 = 6;
    pub const GENERALIZED_TIME: u32 = 24;
    pub const SEQUENCE: u32 = 16;
    pub const SET: u32 = 17;
}

impl<'a> Tlv<'a> {
    fn read(input: &'a [u8], what: &'static str) -> Result<(Tlv<'a>, &'a [u8]), VomsError> {
        let (rest, any) = Any::from_der(input).map_err(|e| der_err(what, e.to_string()))?;
        let raw = &input[..input.len() - rest.len()];
        let tlv = Tlv {
            class: any.header.class(),
            tag: any.header.tag().0,
            constructed: any.header.is_constructed(),
            content: any.data,
            raw,
        };
        Ok((tlv, rest))
    }

    /// Parses `input`, which must hold exactly one element.
    pub fn parse_exact(input: &'a [u8], what: &'static str) -> Result<Tlv<'a>, VomsError> {
        let (tlv, rest) = Tlv::read(input, what)?;
        if !rest.is_empty() {
            return Err(der_err(what, format!("{} trailing bytes", rest.len())));
        }
        Ok(tlv)
    }

    pub fn is(&self, class: Class, tag: u32) -> bool {
        self.class == class && self.tag == tag
    }

    pub fn is_universal(&self, tag: u32) -> bool {
        self.is(Class::Universal, tag)
    }

    pub fn is_context(&self, tag: u32) -> bool {
        self.is(Class::ContextSpecific, tag)
    }

    /// Requires a universal `tag` and returns the element unchanged.
    pub fn expect(self, tag: u32, what: &'static str) -> Result<Tlv<'a>, VomsError> {
        if !self.is_universal(tag) {
            return Err(der_err(
                what,
                format!(
                    "expected universal tag {tag}, found {:?} tag {}",
                    self.class, self.tag
                ),
            ));
        }
        let must_construct = matches!(tag, tag::SEQUENCE | tag::SET);
        if self.constructed != must_construct {
            return Err(der_err(what, "wrong primitive/constructed form"));
        }
        Ok(self)
    }

    /// The children of a constructed element.
    pub fn children(&self) -> Seq<'a> {
        Seq { rest: self.content }
    }

    pub fn oid(&self, what: &'static str) -> Result<Oid<'a>, VomsError> {
        let t = self.expect(tag::OID, what)?;
        let (_, oid) = Oid::from_der(t.raw).map_err(|e| der_err(what, e.to_string()))?;
        Ok(oid)
    }

    /// Content of an OCTET STRING (also used for the IMPLICIT tagged ones, see callers).
    pub fn octets(&self, what: &'static str) -> Result<&'a [u8], VomsError> {
        Ok(self.expect(tag::OCTET_STRING, what)?.content)
    }

    /// The UTF-8 text of an OCTET STRING, as VOMS stores FQANs and generic attributes.
    pub fn octets_utf8(&self, what: &'static str) -> Result<&'a str, VomsError> {
        std::str::from_utf8(self.octets(what)?).map_err(|_| der_err(what, "not UTF-8"))
    }

    /// Content octets of a DER INTEGER, checked for minimal encoding (X.690 §8.3.2).
    pub fn integer(&self, what: &'static str) -> Result<&'a [u8], VomsError> {
        let c = self.expect(tag::INTEGER, what)?.content;
        match c {
            [] => Err(der_err(what, "empty INTEGER")),
            [0x00, b, ..] if b & 0x80 == 0 => Err(der_err(what, "non-minimal INTEGER")),
            [0xff, b, ..] if b & 0x80 != 0 => Err(der_err(what, "non-minimal INTEGER")),
            _ => Ok(c),
        }
    }

    /// A DER BOOLEAN (X.690 §11.1: FALSE is 0x00, TRUE is 0xFF).
    pub fn boolean(&self, what: &'static str) -> Result<bool, VomsError> {
        match self.expect(tag::BOOLEAN, what)?.content {
            [0x00] => Ok(false),
            [0xff] => Ok(true),
            _ => Err(der_err(what, "invalid BOOLEAN")),
        }
    }
}

/// The remaining children of a constructed element, read in order.
#[derive(Debug, Clone)]
pub(crate) struct Seq<'a> {
    rest: &'a [u8],
}

impl<'a> Seq<'a> {
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next child, which must exist.
    pub fn next(&mut self, what: &'static str) -> Result<Tlv<'a>, VomsError> {
        if self.rest.is_empty() {
            return Err(der_err(what, "missing"));
        }
        let (tlv, rest) = Tlv::read(self.rest, what)?;
        self.rest = rest;
        Ok(tlv)
    }

    /// The next child if there is one, or `None` at the end.
    pub fn next_opt(&mut self, what: &'static str) -> Result<Option<Tlv<'a>>, VomsError> {
        if self.rest.is_empty() {
            Ok(None)
        } else {
            self.next(what).map(Some)
        }
    }

    /// The next child if it has this class and tag (for OPTIONAL fields).
    pub fn next_if(
        &mut self,
        class: Class,
        tag: u32,
        what: &'static str,
    ) -> Result<Option<Tlv<'a>>, VomsError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let (tlv, rest) = Tlv::read(self.rest, what)?;
        if tlv.is(class, tag) {
            self.rest = rest;
            Ok(Some(tlv))
        } else {
            Ok(None)
        }
    }

    /// Requires that every child has been consumed.
    pub fn finish(self, what: &'static str) -> Result<(), VomsError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(der_err(what, "unexpected trailing elements"))
        }
    }
}
