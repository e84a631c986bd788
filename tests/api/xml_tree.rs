//! Desk phones' and PBXs' XML answers, read with a real XML parser (quick-xml) into a
//! small tree the tests compare with each vendor's documented structure. A document
//! that is not well-formed (unbalanced, an undeclared entity, two roots) panics.

use quick_xml::XmlVersion;
use quick_xml::events::Event;

#[derive(Debug, Clone, Default)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// The only child called `name`.
    pub fn child(&self, name: &str) -> &Node {
        let found = self.all(name);
        assert_eq!(found.len(), 1, "one <{name}> in <{}>: {self:#?}", self.name);
        found[0]
    }

    pub fn all(&self, name: &str) -> Vec<&Node> {
        self.children.iter().filter(|c| c.name == name).collect()
    }

    /// The names of the children, in order.
    pub fn names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The text of the only child called `name`.
    pub fn text_of(&self, name: &str) -> &str {
        &self.child(name).text
    }
}

fn node(start: &quick_xml::events::BytesStart<'_>) -> Node {
    let name = String::from_utf8(start.name().as_ref().to_vec()).unwrap();
    let attrs = start
        .attributes()
        .map(|a| {
            let a = a.expect("a well-formed attribute");
            let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
            let value = a.normalized_value(XmlVersion::Implicit1_0).unwrap();
            (key, value.into_owned())
        })
        .collect();
    Node {
        name,
        attrs,
        ..Node::default()
    }
}

/// Parses a whole document; panics (showing it) if it is not well-formed XML.
pub fn parse(doc: &str) -> Node {
    let mut reader = quick_xml::Reader::from_str(doc);
    let mut stack: Vec<Node> = Vec::new();
    let mut root = None;
    let attach = |stack: &mut Vec<Node>, done: Node, root: &mut Option<Node>| match stack.last_mut()
    {
        Some(parent) => parent.children.push(done),
        None => {
            assert!(root.is_none(), "two root elements in {doc}");
            *root = Some(done);
        }
    };
    loop {
        let event = reader
            .read_event()
            .unwrap_or_else(|e| panic!("not well-formed XML ({e}): {doc}"));
        match event {
            Event::Start(start) => stack.push(node(&start)),
            Event::Empty(start) => attach(&mut stack, node(&start), &mut root),
            Event::End(_) => {
                let done = stack.pop().expect("balanced elements");
                attach(&mut stack, done, &mut root);
            }
            Event::Text(text) => {
                let text = text.decode().unwrap();
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&text),
                    None => assert!(text.trim().is_empty(), "text outside the root: {doc}"),
                }
            }
            Event::GeneralRef(reference) => {
                let c = match reference.resolve_char_ref().unwrap() {
                    Some(c) => c,
                    None => match reference.decode().unwrap().as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("undeclared entity &{other}; in {doc}"),
                    },
                };
                stack.last_mut().expect("inside an element").text.push(c);
            }
            Event::CData(_) | Event::DocType(_) => panic!("unexpected CDATA or DOCTYPE: {doc}"),
            Event::Eof => break,
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed elements in {doc}");
    root.unwrap_or_else(|| panic!("no root element in {doc}"))
}
