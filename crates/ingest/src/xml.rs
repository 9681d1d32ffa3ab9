//! A small, bounded XML tree for CAP: element local names, text and children, each element
//! with its line and column so that errors can point at it. Namespace prefixes are dropped
//! (`cap:alert` is `alert`); DTDs and entities other than XML's five and character references
//! are refused, so no external entity is ever fetched or expanded.

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

use crate::error::{IngestError, Result};

/// Deepest element nesting accepted; CAP nests five deep (alert/info/area/geocode/value).
const MAX_DEPTH: usize = 32;
/// Most elements accepted in one document.
pub(crate) const MAX_ELEMENTS: usize = 20_000;

/// One element.
#[derive(Debug, Clone, Default)]
pub(crate) struct Element {
    /// Local name, without a namespace prefix.
    pub name: String,
    /// Text content (character data and CDATA, entities resolved), untrimmed.
    pub text: String,
    /// Child elements, in document order.
    pub children: Vec<Element>,
    /// 1-based line and column of the start tag.
    pub line: usize,
    pub column: usize,
}

impl Element {
    /// Children with this local name.
    pub fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a Element> + use<'a, 'n> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first child with this local name.
    pub fn first(&self, name: &str) -> Option<&Element> {
        self.all(name).next()
    }

    /// The trimmed text of the first child with this name, if present and not blank.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.first(name)
            .map(|e| e.text.trim())
            .filter(|t| !t.is_empty())
    }

    /// "line L, column C" of this element.
    pub fn at(&self) -> String {
        format!("line {}, column {}", self.line, self.column)
    }
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    // Step back to a char boundary so that slicing cannot panic.
    let mut end = offset;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Line and column of offsets met in increasing order, as the parser meets elements: a cursor
/// that only moves forward, so a whole document costs one pass over its text instead of one
/// per element (which took minutes on a few megabytes). An offset behind the cursor (never
/// met in practice) is computed from the start.
struct Positions<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
    column: usize,
}

impl<'a> Positions<'a> {
    fn new(text: &'a str) -> Self {
        Positions {
            text,
            offset: 0,
            line: 1,
            column: 1,
        }
    }

    fn at(&mut self, offset: usize) -> (usize, usize) {
        let mut end = offset.min(self.text.len());
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        if end < self.offset {
            return line_column(self.text, end);
        }
        let passed = &self.text[self.offset..end];
        match passed.rfind('\n') {
            Some(last) => {
                self.line += passed.matches('\n').count();
                self.column = passed[last + 1..].chars().count() + 1;
            }
            None => self.column += passed.chars().count(),
        }
        self.offset = end;
        (self.line, self.column)
    }
}

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    match name.rsplit_once(':') {
        Some((_, local)) => local.to_string(),
        None => name.into_owned(),
    }
}

/// Parses `text` into its root element. `field` names the input in errors.
pub(crate) fn parse(text: &str, field: &str) -> Result<Element> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    let mut positions = Positions::new(text);
    let malformed = |offset: u64, what: &str| {
        let (line, column) = line_column(text, usize::try_from(offset).unwrap_or(usize::MAX));
        IngestError::invalid(
            field,
            format!("is not well-formed XML at line {line}, column {column}: {what}"),
        )
    };
    loop {
        let start = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| malformed(reader.error_position(), &e.to_string()))?;
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(malformed(start, "content after the root element"));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                count += 1;
                if count > MAX_ELEMENTS {
                    return Err(IngestError::too_large(
                        field,
                        format!(
                            "has more than the CAP limit of {MAX_ELEMENTS} elements; a CAP alert has a few dozen"
                        ),
                    ));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(malformed(start, "elements nested too deeply"));
                }
                let (line, column) = positions.at(usize::try_from(start).unwrap_or(usize::MAX));
                let element = Element {
                    name: local(e.name().as_ref()),
                    line,
                    column,
                    ..Element::default()
                };
                if matches!(event, Event::Empty(_)) {
                    close(element, &mut stack, &mut root);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => {
                let Some(element) = stack.pop() else {
                    return Err(malformed(start, "an end tag without a start tag"));
                };
                close(element, &mut stack, &mut root);
            }
            Event::Text(t) => {
                let decoded = t
                    .xml10_content()
                    .map_err(|e| malformed(start, &e.to_string()))?;
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&decoded),
                    None if decoded.trim().is_empty() => {}
                    None => return Err(malformed(start, "text outside the root element")),
                }
            }
            Event::CData(c) => {
                let decoded = c.decode().map_err(|e| malformed(start, &e.to_string()))?;
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&decoded),
                    None => return Err(malformed(start, "CDATA outside the root element")),
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref()
                        .map_err(|e| malformed(start, &e.to_string()))?
                        .map(String::from)
                } else {
                    let name = r.decode().map_err(|e| malformed(start, &e.to_string()))?;
                    resolve_predefined_entity(&name).map(str::to_string)
                };
                let Some(resolved) = resolved else {
                    return Err(malformed(
                        start,
                        "an unknown entity reference (only &lt; &gt; &amp; &quot; &apos; and &#...; are allowed)",
                    ));
                };
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&resolved),
                    None => return Err(malformed(start, "a reference outside the root element")),
                }
            }
            Event::DocType(_) => {
                return Err(malformed(
                    start,
                    "a DOCTYPE; CAP documents have none (DTDs are refused so that no entity is expanded)",
                ));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(malformed(
            text.len() as u64,
            &format!(
                "the document ends inside <{}> opened at {}",
                open.name,
                open.at()
            ),
        ));
    }
    root.ok_or_else(|| IngestError::invalid(field, "is empty; expected an XML document"))
}

fn close(element: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_tree_with_positions() {
        let doc = "<?xml version=\"1.0\"?>\n<cap:alert xmlns:cap=\"urn:x\">\n  <a>x &amp; y &#65;</a><b/>\n  <c><![CDATA[<raw>]]></c>\n</cap:alert>";
        let root = parse(doc, "f").unwrap();
        assert_eq!(root.name, "alert");
        assert_eq!((root.line, root.column), (2, 1));
        assert_eq!(root.text_of("a"), Some("x & y A"));
        assert_eq!(root.first("a").unwrap().at(), "line 3, column 3");
        assert!(root.first("b").is_some());
        assert_eq!(root.text_of("c"), Some("<raw>"));
    }

    #[test]
    fn malformed_documents_report_line_and_column() {
        for (doc, want) in [
            ("<a>\n  <b>\n</a>", "line 3"),
            ("<a>\n<b></b>", "ends inside <a>"),
            ("<a>&bogus;</a>", "unknown entity"),
            (
                "<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>",
                "DOCTYPE",
            ),
            ("", "is empty"),
            ("<a/><b/>", "after the root"),
            ("text", "outside the root"),
        ] {
            let e = parse(doc, "--cap").unwrap_err().to_string();
            assert!(e.contains(want), "{doc:?}: {e}");
            assert!(e.starts_with("--cap"), "{e}");
        }
        let deep = "<a>".repeat(100);
        assert!(
            parse(&deep, "f")
                .unwrap_err()
                .to_string()
                .contains("deeply")
        );
    }

    #[test]
    fn positions_agree_with_line_column() {
        let text = "<a>\n  <é/>\n<b>x</b>\n</a>";
        let mut positions = Positions::new(text);
        for offset in [0, 1, 4, 6, 7, 8, 12, 13, 20, 99] {
            assert_eq!(
                positions.at(offset),
                line_column(text, offset),
                "at {offset}"
            );
        }
        assert_eq!(positions.at(3), line_column(text, 3), "behind the cursor");
    }

    #[test]
    fn line_column_is_safe_on_any_offset() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é", 1), (1, 1));
        assert_eq!(line_column("x", 99), (1, 2));
    }
}
