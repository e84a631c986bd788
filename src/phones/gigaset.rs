//! Gigaset's online phonebook protocol, reverse search only: the base asks
//! `?hm=<number>` for each incoming call and shows the name it gets back.

use crate::phones::xml::Xml;

/// A found caller: `<list response="get_list" type="pb" total="1" first="1" last="1">`
/// with one `entry` (the whole name as `ln`, the family name: cidgate keeps one name
/// field and does not guess where it splits).
pub fn found(name: &str, number: &str) -> String {
    let mut xml = Xml::new();
    xml.open(
        "list",
        &[
            ("response", "get_list"),
            ("type", "pb"),
            ("total", "1"),
            ("first", "1"),
            ("last", "1"),
        ],
    )
    .open("entry", &[])
    .leaf("ln", name)
    .leaf("fn", "")
    .leaf("hm", number)
    .close();
    xml.finish()
}

/// Nobody holds the number.
pub fn not_found() -> String {
    let mut xml = Xml::new();
    xml.empty(
        "list",
        &[
            ("response", "get_list"),
            ("type", "pb"),
            ("notfound", "hm"),
            ("total", "0"),
        ],
    );
    xml.finish()
}

/// The answer could not be had in time (error 6: the service is unavailable); the base
/// shows the number alone.
pub fn unavailable() -> String {
    let mut xml = Xml::new();
    xml.open("error", &[("response", "get_list"), ("type", "pb")])
        .leaf("errorid", "6");
    xml.finish()
}
